import type { Clock } from "@sluice/core";

/**
 * A hedged upload (the tail-at-scale remedy for object stores whose latency has a long tail, as
 * S3's has): when the first upload has not answered after `hedgeAfterMs`, a second one starts
 * under a fresh key, and whichever succeeds first is used. Each key is written once, so nothing
 * is ambiguous: the other object, if it lands, is named by no index entry — garbage, like any
 * upload whose commit never happened. The price is one more PUT for the slowest uploads only.
 *
 * `upload(attempt)` uploads under a key of its own and resolves with it. Fails only when every
 * attempt started has failed (with the last failure).
 */
export function hedgedUpload(
  clock: Clock,
  hedgeAfterMs: number | undefined,
  upload: (attempt: number) => Promise<string>,
): Promise<string> {
  if (hedgeAfterMs === undefined) return upload(0);
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    let running = 0;
    const start = (attempt: number) => {
      running++;
      upload(attempt).then(
        (key) => {
          running--;
          if (settled) return;
          settled = true;
          timer.cancel();
          resolve(key);
        },
        (error: unknown) => {
          running--;
          // A failure is not slowness: with no attempt left running, it is the answer.
          if (settled || running > 0) return;
          settled = true;
          timer.cancel();
          reject(error);
        },
      );
    };
    const timer = clock.setTimer(hedgeAfterMs, () => {
      if (!settled) start(1);
    });
    start(0);
  });
}
