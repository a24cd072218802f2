import { readFileSync } from "node:fs";

/**
 * Whether the process that wrote a segment still runs. A process id alone cannot say: once the
 * writer is gone, the system may give its id to another process, which would then read as the
 * writer forever. So each segment also records its writer's start time where the system reports
 * one (Linux: `/proc/<pid>/stat`, the start in clock ticks after boot); a process with the id but
 * another start time is not the writer. Where no start time can be read (other systems, a row
 * written before start times were recorded), the id alone decides, as before: a reused id then
 * reads as running, which keeps the segment and its rows, never loses them.
 */
export function writerRunning(pid: number, start: string | null | undefined): boolean {
  if (!processExists(pid)) return false;
  if (start == null) return true;
  const now = processStart(pid);
  return now === undefined || now === start;
}

/** The start time of the process with this id, as text; undefined where the system does not say. */
export function processStart(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces and parentheses) start after its last
  // ")": state is the first of them, and the start time the 22nd field of the line, the 20th here.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = fields[19];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** Whether a process with this id runs on this machine (one that is not ours to signal counts). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code !== "ESRCH";
  }
}
