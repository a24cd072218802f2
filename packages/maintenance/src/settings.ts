import { COMMIT_WINDOW_MS } from "@sluice/engine";

/**
 * The maintenance settings (ARCHITECTURE.md, "Maintenance"), apart from the components (stores,
 * clock) a runner is given. Defaults suit a deployment; tests and benchmarks shorten the times.
 */
export interface MaintenanceSettings {
  /** Compaction merges small entries into segments of about this many bytes. Default 8 MiB. */
  segmentBytes: number;
  /** A segment's entry lists a piece about every this many bytes, at batch boundaries. Default 256 KiB. */
  segmentPieceBytes: number;
  /**
   * A run of small entries shorter than `segmentBytes` is merged once its newest entry is this old
   * (and it holds at least two entries that are not segments yet). Default 10 minutes.
   */
  segmentSettleMs: number;
  /** Objects younger than this are never garbage: the commit window plus a margin. Default 60 minutes. */
  gcMinAgeMs: number;
  /** An unreferenced object is deleted this long after it was first found so. Default 10 minutes. */
  objectGraceMs: number;
  /** How long a job's lease lasts without renewal; jobs renew it at half. Default 60 s. */
  leaseTtlMs: number;
  /** Key compaction: the most distinct keys one run maps; a larger dirty part takes several runs. */
  keyMapMax: number;
  /** Key compaction: the most stored bytes of the dirty part one run cleans. Default 256 MiB. */
  keyCompactionBytesMax: number;
  /**
   * Garbage collection lists a topic's objects and reads its index at most this often, unless
   * marked objects are due for deletion. Default 15 minutes.
   */
  gcIntervalMs: number;
  /**
   * Index items deleted or written per transaction beside the guard and the head or state update
   * (DynamoDB takes 100 operations). Default 97; tests lower it to take the many-transaction paths.
   */
  itemsPerTransaction: number;
}

export const DEFAULT_MAINTENANCE_SETTINGS: MaintenanceSettings = {
  segmentBytes: 8 * 1024 * 1024,
  segmentPieceBytes: 256 * 1024,
  segmentSettleMs: 10 * 60 * 1000,
  gcMinAgeMs: 60 * 60 * 1000,
  objectGraceMs: 10 * 60 * 1000,
  leaseTtlMs: 60 * 1000,
  keyMapMax: 1_000_000,
  keyCompactionBytesMax: 256 * 1024 * 1024,
  gcIntervalMs: 15 * 60 * 1000,
  itemsPerTransaction: 97,
};

export function maintenanceSettings(overrides: Partial<MaintenanceSettings> = {}): MaintenanceSettings {
  const settings = { ...DEFAULT_MAINTENANCE_SETTINGS, ...overrides };
  for (const [name, value] of Object.entries(settings)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`maintenance setting ${name} must be a non-negative integer, got ${value}`);
    }
  }
  if (settings.segmentBytes < 1 || settings.segmentPieceBytes < 1 || settings.leaseTtlMs < 2) {
    throw new RangeError("segmentBytes, segmentPieceBytes and leaseTtlMs must be positive");
  }
  if (settings.itemsPerTransaction < 1 || settings.itemsPerTransaction > 97) {
    throw new RangeError(`itemsPerTransaction must be from 1 to 97, got ${settings.itemsPerTransaction}`);
  }
  // The safety of garbage collection rests on this (ARCHITECTURE.md, "Garbage collection").
  if (settings.gcMinAgeMs <= COMMIT_WINDOW_MS) {
    throw new RangeError(
      `gcMinAgeMs (${settings.gcMinAgeMs}) must be longer than the commit window (${COMMIT_WINDOW_MS} ms)`,
    );
  }
  return settings;
}
