// Memory figures the benchmarks print.
import * as fs from 'node:fs';

/** Peak resident memory of a live process, from /proc (Linux only). */
export function peakResidentBytes(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
