import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AvailabilityAgent,
  type AvailabilityOptions,
  connectionFactor,
  PATHS,
  thermalFactor,
} from '../../src/cluster/availability.js';
import {
  countEstablished,
  parseCpuInfo,
  parseCpuList,
  parseLoadavg,
  parseProcStat,
} from '../../src/cluster/proc-metrics.js';
import { InvalidArgumentError } from '../../src/errors.js';
import {
  CPUINFO_ARM,
  CPUINFO_X86,
  type FakeFiles,
  FULL_MACHINE,
  fakeFs,
  LOADAVG,
  MALFORMED_MACHINE,
  NET_TCP,
  NET_TCP6,
  STAT_1,
  STAT_2,
} from './availability-fixtures.js';

function close(actual: number | undefined, expected: number, what: string): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) < 1e-9,
    `${what}: expected ${expected}, got ${actual}`,
  );
}

/** An agent over fake files whose clock advances 2 s per reading and whose delay returns at once. */
function agentOver(files: FakeFiles, options: AvailabilityOptions = {}) {
  const fs = fakeFs(files);
  const delays: number[] = [];
  let clock = 1_000_000;
  const agent = new AvailabilityAgent({
    readFile: fs.readFile,
    listDir: fs.listDir,
    delay: async (ms) => {
      delays.push(ms);
    },
    now: () => (clock += 2000),
    ...options,
  });
  return { agent, delays, fs };
}

describe('cluster availability: parsers', () => {
  it('read the numbers out of real-looking files', () => {
    assert.deepEqual(parseCpuInfo(CPUINFO_X86), { processors: 4, mhz: [2000, 2100, 2200, 2300] });
    assert.deepEqual(parseCpuInfo(CPUINFO_ARM), { processors: 2, mhz: [] });
    assert.deepEqual(parseProcStat(STAT_1), { total: 1000, idle: 850, cpus: 4 });
    assert.deepEqual(parseLoadavg(LOADAVG), { load1: 2, running: 3, total: 345 });
    assert.equal(countEstablished(NET_TCP), 3);
    assert.equal(countEstablished(NET_TCP6), 1);
    assert.equal(parseCpuList('0-3,6,8-9\n'), 7);
    assert.equal(parseCpuList('0\n'), 1);
  });

  it('return undefined for malformed text', () => {
    assert.equal(parseProcStat('cpu  1 2\n'), undefined);
    assert.equal(parseProcStat('cpu  a b c d\n'), undefined);
    assert.equal(parseProcStat('intr 1 2 3\n'), undefined);
    assert.equal(parseLoadavg('0.1 0.2 0.3\n'), undefined);
    assert.equal(parseLoadavg(''), undefined);
    assert.equal(countEstablished('garbage\n   1: 01\n'), undefined);
    assert.equal(parseCpuList('3-1'), undefined);
    assert.equal(parseCpuList('0,,1'), undefined);
    assert.equal(parseCpuList(''), undefined);
  });
});

describe('cluster availability: formula pieces', () => {
  it('thermalFactor is 1 up to the warning temperature, then falls linearly to the floor', () => {
    assert.equal(thermalFactor(undefined), 1);
    assert.equal(thermalFactor(20), 1);
    assert.equal(thermalFactor(70), 1);
    close(thermalFactor(82.5), 0.55, 'at 82.5 °C');
    assert.equal(thermalFactor(95), 0.1);
    assert.equal(thermalFactor(120), 0.1);
    close(thermalFactor(50, 40, 60, 0), 0.5, 'custom thresholds');
  });

  it('connectionFactor halves at connectionsPerCore × cores', () => {
    assert.equal(connectionFactor(undefined, 4), 1);
    assert.equal(connectionFactor(0, 4), 1);
    assert.equal(connectionFactor(4000, 4), 0.5);
    assert.equal(connectionFactor(12, 4, 1), 0.25);
  });
});

describe('cluster availability: agent on fixtures', () => {
  it('measures a full machine exactly', async () => {
    const { agent, delays } = agentOver(FULL_MACHINE, { connectionsPerCore: 1 });
    const s = await agent.sample();
    assert.equal(s.cores, 4);
    assert.equal(s.mhz, 2150);
    assert.equal(s.capacity, 8600);
    assert.equal(s.cpuBusy, 0.5);
    assert.deepEqual(delays, [200], 'the first sample measures the CPU over one window');
    assert.equal(s.processes, 345);
    assert.equal(s.connections, 4);
    assert.equal(s.temperatureC, 82.5);
    assert.equal(s.powerW, 12.5);
    assert.deepEqual(s.custom, {});
    assert.deepEqual(s.problems, []);
    close(s.factors.connections, 0.5, 'connection factor');
    close(s.factors.thermal, 0.55, 'thermal factor');
    // 8600 MHz × (1 − 0.5) × 0.5 × 0.55
    close(s.availability, 1182.5, 'availability');
    assert.equal(s.at, 1_002_000);
  });

  it('measures the CPU since the previous sample on the next call, without waiting', async () => {
    const { agent, delays } = agentOver(FULL_MACHINE);
    await agent.sample();
    const s = await agent.sample();
    assert.equal(s.cpuBusy, 0.25);
    assert.deepEqual(delays, [200]);
  });

  it('prefers the nominal maximum frequency from /sys over the current one from /proc/cpuinfo', async () => {
    const files: FakeFiles = { ...FULL_MACHINE };
    for (let c = 0; c < 4; c++) files[`${PATHS.cpuDir}/cpu${c}/cpufreq/cpuinfo_max_freq`] = '3000000\n';
    files[`${PATHS.cpuDir}/cpufreq/policy0`] = 'not a cpu';
    const s = await agentOver(files).agent.sample();
    assert.equal(s.mhz, 3000);
    assert.equal(s.capacity, 12000);
  });

  it('falls back: cores from the online list, 1000 MHz, the load average for the CPU, processes from /proc', async () => {
    const files: FakeFiles = {
      '/proc/cpuinfo': CPUINFO_ARM.replace(/processor.*\n/g, ''),
      '/sys/devices/system/cpu/online': '0-3,6\n',
      '/proc/loadavg': '2.50 1.00 1.00 1/99 7\n',
      '/proc/1/stat': 'x',
      '/proc/42/stat': 'x',
      '/proc/self/stat': 'x',
      '/proc/net/tcp': NET_TCP,
    };
    const s = await agentOver(files).agent.sample();
    assert.equal(s.cores, 5);
    assert.equal(s.mhz, 1000);
    assert.equal(s.cpuBusy, 0.5, 'load 2.5 over 5 cores');
    assert.equal(s.processes, 99);
    assert.equal(s.connections, 3, 'tcp6 missing: tcp alone');
    const noLoad = await agentOver({ ...files, '/proc/loadavg': 'x' }).agent.sample();
    assert.equal(noLoad.processes, 2, 'numeric entries of /proc');
    assert.equal(noLoad.cpuBusy, undefined);
    const sampleMsZero = await agentOver({ ...FULL_MACHINE }, { cpuSampleMs: 0 }).agent.sample();
    assert.equal(sampleMsZero.cpuBusy, 0.5, 'no window: load 2.0 over 4 cores');
  });

  it('never throws on missing files: unknown metrics leave their factor at 1', async () => {
    const s = await agentOver({}).agent.sample();
    assert.equal(s.cores, 1);
    assert.equal(s.mhz, 1000);
    assert.equal(s.cpuBusy, undefined);
    assert.equal(s.processes, undefined);
    assert.equal(s.connections, undefined);
    assert.equal(s.temperatureC, undefined);
    assert.equal(s.powerW, undefined);
    assert.deepEqual(s.factors, { cpu: 1, connections: 1, thermal: 1, custom: 1 });
    assert.equal(s.availability, 1000);
    assert.ok(s.problems.includes('/proc/stat: unreadable'), s.problems.join('; '));
    const throwing = new AvailabilityAgent({
      readFile: async () => {
        throw new Error('EIO');
      },
      listDir: () => {
        throw new Error('EIO');
      },
    });
    assert.equal((await throwing.sample()).availability, 1000);
  });

  it('never throws on malformed files, and says which ones', async () => {
    const s = await agentOver(MALFORMED_MACHINE).agent.sample();
    assert.equal(s.cores, 1);
    assert.equal(s.mhz, 1000);
    assert.equal(s.cpuBusy, undefined);
    assert.equal(s.connections, undefined);
    assert.equal(s.temperatureC, undefined, 'garbage and absurd temperatures are ignored');
    assert.equal(s.powerW, undefined);
    assert.equal(s.availability, 1000);
    for (const path of ['/proc/cpuinfo', '/proc/stat', '/proc/loadavg']) {
      assert.ok(s.problems.includes(`${path}: malformed`), `${path} in ${s.problems.join('; ')}`);
    }
  });

  it('never throws and stays in range whatever the files say', async () => {
    const paths = Object.keys(FULL_MACHINE);
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom(...paths),
          fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom(STAT_1, STAT_2, NET_TCP)),
        ),
        async (files) => {
          const s = await agentOver(files).agent.sample();
          assert.ok(Number.isFinite(s.availability) && s.availability >= 0, `availability ${s.availability}`);
          assert.ok(s.cores >= 1 && s.mhz > 0);
          assert.ok(s.cpuBusy === undefined || (s.cpuBusy >= 0 && s.cpuBusy <= 1), `cpuBusy ${s.cpuBusy}`);
        },
      ),
      { seed: 0x5eed, numRuns: 300 },
    );
  });

  it('reports custom metrics and multiplies custom factors in; failures are ignored and noted', async () => {
    const { agent } = agentOver(FULL_MACHINE, {
      connectionsPerCore: 1,
      custom: {
        queue: () => 7,
        broken: () => {
          throw new Error('no');
        },
        nan: () => Number.NaN,
      },
      customFactors: [(s) => (s.custom.queue === 7 ? 0.5 : 1), () => Number.NaN, () => -1],
    });
    const s = await agent.sample();
    assert.deepEqual(s.custom, { queue: 7 });
    assert.equal(s.factors.custom, 0.5);
    close(s.availability, 591.25, 'availability');
    assert.deepEqual(s.problems, [
      'custom broken: not a finite number',
      'custom nan: not a finite number',
      'customFactors[1]: not a finite number >= 0',
      'customFactors[2]: not a finite number >= 0',
    ]);
    const zero = await agentOver(FULL_MACHINE, { customFactors: [() => 0] }).agent.sample();
    assert.equal(zero.availability, 0);
  });

  it('refuses bad options', () => {
    const bad = (options: AvailabilityOptions, pattern: RegExp) =>
      assert.throws(
        () => new AvailabilityAgent(options),
        (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message),
      );
    bad({ connectionsPerCore: 0 }, /connectionsPerCore/);
    bad({ tempWarnC: 90, tempMaxC: 80 }, /tempMaxC: expected a number > tempWarnC \(90\), got 80/);
    bad({ thermalFloor: 2 }, /thermalFloor/);
    bad({ cpuSampleMs: -1 }, /cpuSampleMs/);
  });
});

describe('cluster availability: this machine', () => {
  it('takes a real sample from /proc and /sys', async (t) => {
    if (process.platform !== 'linux') {
      t.skip('Linux only');
      return;
    }
    const s = await new AvailabilityAgent().sample();
    assert.ok(Number.isInteger(s.cores) && s.cores >= 1, `cores ${s.cores}`);
    assert.ok(s.capacity > 0, `capacity ${s.capacity}`);
    assert.ok(s.cpuBusy !== undefined && s.cpuBusy >= 0 && s.cpuBusy <= 1, `cpuBusy ${s.cpuBusy}`);
    assert.ok(s.processes !== undefined && s.processes >= 1, `processes ${s.processes}`);
    assert.ok(s.connections !== undefined && s.connections >= 0, `connections ${s.connections}`);
    assert.ok(s.availability >= 0 && s.availability <= s.capacity, `availability ${s.availability}`);
    assert.deepEqual(s.problems, []);
  });
});
