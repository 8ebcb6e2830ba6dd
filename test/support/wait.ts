/**
 * Polling with a deadline — the tests' only way to wait for something that happens
 * asynchronously (never a bare sleep).
 */

/** Runs `check` until it stops throwing (an assertion that holds), or rethrows its last error at the deadline. */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 5000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
