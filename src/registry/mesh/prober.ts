/**
 * The failure detector's probes: a direct ping over the node's link together with a bare TCP
 * connect to its port (which tells a refused port from an open one), and indirect pings
 * ("ping-req": probe it for me) through other peers, all started at once.
 */
import type { ProbeOutcome } from './messages.js';
import type { Link, Transport } from './transport.js';

export interface ProberConfig {
  readonly selfId: string;
  readonly pingTimeoutMs: number;
  readonly indirectChecks: number;
  /** The address a node advertises, if known. */
  addressOf(id: string): string | undefined;
  /** Whether a peer may help (it is alive in our view). */
  canHelp(id: string): boolean;
}

/** What a check found: the direct probe's outcome and each helper's. */
export type CheckDone = (direct: ProbeOutcome, indirect: readonly ProbeOutcome[]) => void;

export class Prober {
  readonly #config: ProberConfig;
  readonly #transport: Transport;
  /** Answers awaited, keyed by `peer/seq`. */
  readonly #pending = new Map<string, (outcome: ProbeOutcome) => void>();
  #seq = 0;
  #closed = false;

  constructor(config: ProberConfig, transport: Transport) {
    this.#config = config;
    this.#transport = transport;
  }

  /**
   * Checks a node: probes it directly and through up to `indirectChecks` helpers. Reports as
   * soon as the outcome is decided: an answer, a refusal seen directly and by a helper (or
   * with no helper to ask), or every probe finished.
   */
  check(id: string, done: CheckDone): void {
    const helpers = this.#transport
      .links()
      .filter((l) => l.peerId !== id && this.#config.canHelp(l.peerId))
      .sort(() => Math.random() - 0.5)
      .slice(0, this.#config.indirectChecks);
    let direct: ProbeOutcome | undefined;
    const indirect: ProbeOutcome[] = [];
    let reported = false;
    const evaluate = () => {
      if (reported || this.#closed) return;
      const answered = direct === 'ack' || indirect.includes('ack');
      const gone = direct === 'refused' && (helpers.length === 0 || indirect.includes('refused'));
      const complete = direct !== undefined && indirect.length === helpers.length;
      if (!answered && !gone && !complete) return;
      reported = true;
      done(direct ?? 'timeout', indirect);
    };
    void this.probe(id).then((outcome) => {
      direct = outcome;
      evaluate();
    });
    for (const helper of helpers) {
      void this.#ask(helper, id, 2 * this.#config.pingTimeoutMs + 100).then((outcome) => {
        indirect.push(outcome);
        evaluate();
      });
    }
  }

  /** Pings `id` over its link (if any) and opens a bare connection to its port, at once. */
  probe(id: string): Promise<ProbeOutcome> {
    if (id === this.#config.selfId) return Promise.resolve('ack');
    const addr = this.#config.addressOf(id);
    const link = this.#transport.link(id);
    if (this.#closed || (!addr && !link)) return Promise.resolve('timeout');
    return new Promise((resolve) => {
      const seq = ++this.#seq;
      const key = `${id}/${seq}`;
      let port: ProbeOutcome | undefined;
      let settled = false;
      const finish = (outcome: ProbeOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(key);
        resolve(outcome);
      };
      // Decide after pending input is read (setImmediate runs after the poll phase), so an
      // answer already waiting in a socket is not mistaken for silence.
      const timer = setTimeout(
        () => setImmediate(() => finish(port ?? 'timeout')),
        this.#config.pingTimeoutMs,
      );
      timer.unref?.();
      if (link) {
        this.#pending.set(key, () => finish('ack'));
        link.send({ t: 'ping', seq });
      }
      if (addr) {
        void this.#transport.probeConnect(addr, this.#config.pingTimeoutMs).then((outcome) => {
          port = outcome;
          if (outcome === 'refused') finish('refused');
        });
      }
    });
  }

  /** An `ack` or `ping-res` arrived from `from`. */
  answer(from: string, seq: number, outcome: ProbeOutcome): void {
    this.#pending.get(`${from}/${seq}`)?.(outcome);
  }

  /** Answers a peer's `ping-req`: probes the target, then replies with what it found. */
  help(link: Link, seq: number, target: string): void {
    void this.probe(target).then((result) => link.send({ t: 'ping-res', seq, target, result }));
  }

  close(): void {
    this.#closed = true;
    for (const finish of [...this.#pending.values()]) finish('timeout');
    this.#pending.clear();
  }

  /** Asks `helper` to probe `target` for us ("ping-req"). */
  #ask(helper: Link, target: string, timeoutMs: number): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const seq = ++this.#seq;
      const key = `${helper.peerId}/${seq}`;
      const finish = (outcome: ProbeOutcome) => {
        clearTimeout(timer);
        this.#pending.delete(key);
        resolve(outcome);
      };
      const timer = setTimeout(() => setImmediate(() => finish('timeout')), timeoutMs);
      timer.unref?.();
      this.#pending.set(key, finish);
      if (!helper.send({ t: 'ping-req', seq, target })) finish('timeout');
    });
  }
}
