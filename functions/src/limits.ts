/**
 * Request limits of the HTTP apps. The defaults follow the platform they run on: Lambda buffers at
 * most 6 MB of request, and the engine appends at most 10,000 records at once.
 */
export interface HttpLimits {
  /** Largest request body, counted while it is read (and checked against Content-Length first). */
  requestBytesMax: number;
  /** Most records in one produce request (streaming mode or `records:batch`). */
  recordsPerRequestMax: number;
  /** Largest `timeout_ms` of a read (long-poll and SSE). Lambda's timeout bounds it in AWS. */
  readTimeoutMsMax: number;
  /** Largest `max_bytes` of a read; the response, base64 and all, must fit Lambda's 6 MB. */
  readBytesMax: number;
  /** How often an idle SSE stream sends a `: keep-alive` comment. */
  keepAliveIntervalMs: number;
}

export const MIB = 1024 * 1024;

export const DEFAULT_LIMITS: HttpLimits = {
  requestBytesMax: 6 * MIB,
  recordsPerRequestMax: 10_000,
  readTimeoutMsMax: 30_000,
  readBytesMax: 4 * MIB,
  keepAliveIntervalMs: 15_000,
};
