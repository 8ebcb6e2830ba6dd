/** Fixture files for the availability agent tests (not a test file itself). */

/** A fake file system: a file's text, or a queue of texts returned one per read (the last one repeats). */
export type FakeFiles = Record<string, string | string[]>;

export interface FakeFs {
  readFile: (path: string) => Promise<string | undefined>;
  listDir: (path: string) => Promise<string[]>;
  /** Paths read, in order. */
  reads: string[];
}

/** Directory listings are derived from the file paths (every directory on the way is listable). */
export function fakeFs(files: FakeFiles): FakeFs {
  const queues = new Map(Object.entries(files).map(([p, v]) => [p, Array.isArray(v) ? [...v] : [v]]));
  const reads: string[] = [];
  return {
    reads,
    async readFile(path) {
      reads.push(path);
      const queue = queues.get(path);
      if (queue === undefined) return undefined;
      return queue.length > 1 ? queue.shift() : queue[0];
    },
    async listDir(path) {
      const prefix = `${path}/`;
      const names = new Set<string>();
      for (const p of queues.keys())
        if (p.startsWith(prefix)) names.add(p.slice(prefix.length).split('/')[0]!);
      return [...names].sort();
    },
  };
}

export const CPUINFO_X86 = `processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU
cpu MHz\t\t: 2000.000
cache size\t: 36608 KB

processor\t: 1
cpu MHz\t\t: 2100.000

processor\t: 2
cpu MHz\t\t: 2200.000

processor\t: 3
cpu MHz\t\t: 2300.000
`;

/** ARM64 style: processors but no `cpu MHz`. */
export const CPUINFO_ARM = `processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm
CPU implementer\t: 0x41

processor\t: 1
BogoMIPS\t: 50.00
`;

export const STAT_1 = `cpu  100 0 50 800 50 0 0 0 0 0
cpu0 25 0 12 200 13 0 0 0 0 0
cpu1 25 0 13 200 12 0 0 0 0 0
cpu2 25 0 12 200 13 0 0 0 0 0
cpu3 25 0 13 200 12 0 0 0 0 0
intr 12345 0 0
ctxt 99999
btime 1700000000
processes 4242
procs_running 2
procs_blocked 0
`;

/** 800 more ticks, 400 of them idle: busy 0.5 since STAT_1. */
export const STAT_2 = `cpu  400 0 150 1200 50 0 0 0 0 0
cpu0 100 0 37 300 13 0 0 0 0 0
cpu1 100 0 38 300 12 0 0 0 0 0
cpu2 100 0 37 300 13 0 0 0 0 0
cpu3 100 0 38 300 12 0 0 0 0 0
`;

/** 1000 more ticks, 750 of them idle or iowait: busy 0.25 since STAT_2. Guest time is inside user and not added. */
export const STAT_3 = `cpu  550 0 250 1800 200 0 0 0 40 0
`;

export const LOADAVG = '2.00 1.50 1.00 3/345 12345\n';

const TCP_HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

/** 3 ESTABLISHED (01), one LISTEN (0A), one TIME_WAIT (06). */
export const NET_TCP = `${TCP_HEADER}   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1146 1 0000000065f57531 100 0 0 10 0
   1: 0100007F:0050 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2146 1 0000000065f57532 20 4 30 10 -1
   2: 0100007F:0050 0100007F:D2F2 01 00000000:00000000 00:00000000 00000000     0        0 2147 1 0000000065f57533 20 4 30 10 -1
   3: 0100007F:0050 0100007F:D2F4 01 00000000:00000000 00:00000000 00000000     0        0 2148 1 0000000065f57534 20 4 30 10 -1
   4: 0100007F:0050 0100007F:D2F6 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000065f57535
`;

/** 1 ESTABLISHED. */
export const NET_TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000  1000        0 3001 1 0000000000000000 20 4 0 10 -1
`;

/** A full x86 machine: 4 cores at 2150 MHz on average, busy 0.5, 4 connections, 82.5 °C, 12.5 W. */
export const FULL_MACHINE = {
  '/proc/cpuinfo': CPUINFO_X86,
  '/proc/stat': [STAT_1, STAT_2, STAT_3],
  '/proc/loadavg': LOADAVG,
  '/proc/net/tcp': NET_TCP,
  '/proc/net/tcp6': NET_TCP6,
  '/sys/devices/system/cpu/online': '0-3\n',
  '/sys/class/thermal/thermal_zone0/temp': '45000\n',
  '/sys/class/thermal/thermal_zone1/temp': '82500\n',
  '/sys/class/thermal/cooling_device0/cur_state': '0\n',
  '/sys/class/power_supply/BAT0/power_now': '12500000\n',
  '/sys/class/power_supply/AC/online': '1\n',
} satisfies FakeFiles;

/** Every file present but garbled. */
export const MALFORMED_MACHINE = {
  '/proc/cpuinfo': 'this is not cpuinfo\n\x00\x01',
  '/proc/stat': 'cpu  one two three\n',
  '/proc/loadavg': 'load: high\n',
  '/proc/net/tcp': '01 01 01 01\n',
  '/proc/net/tcp6': '',
  '/sys/devices/system/cpu/online': '3-1\n',
  '/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq': 'fast\n',
  '/sys/class/thermal/thermal_zone0/temp': 'hot\n',
  '/sys/class/thermal/thermal_zone1/temp': '999999999\n',
  '/sys/class/power_supply/BAT0/power_now': '-\n',
} satisfies FakeFiles;
