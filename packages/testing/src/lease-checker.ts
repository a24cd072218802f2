import type { Item } from "@sluice/storage";
import { type AppliedWrite, itemId } from "./recording-store.js";

/** The attributes a lease lives in (ARCHITECTURE.md, "Leases"); passed in to keep this package below leases. */
export interface LeaseAttributes {
  owner: string;
  epoch: string;
  expiresAt: string;
}

/**
 * What is wrong with an applied write to lease items (those `isLease` picks), judged against the
 * items as it found them at clock time `nowMs`: an acquisition (a write that sets the epoch) must
 * find the lease free, released, expired or already the taker's — or be a hand-over the previous
 * owner named (`allowTransfer`) — and move the epoch to exactly the next one; no write ever moves
 * an epoch back. Returns one line per violation.
 */
export function leaseWriteViolations(
  write: AppliedWrite,
  nowMs: number,
  attributes: LeaseAttributes,
  isLease: (item: { pk: string; sk: string }) => boolean,
  allowTransfer: (from: string, to: string) => boolean = () => false,
): string[] {
  const violations: string[] = [];
  for (const operation of write.operations) {
    const key = operation.kind === "put" ? operation.item : operation.key;
    if (!isLease(key) || operation.kind === "condition_check") continue;
    const before: Item | undefined = write.before.get(itemId(key));
    const after: Item | undefined = write.after.get(itemId(key));
    if (!after) continue;
    const epochBefore = Number(before?.[attributes.epoch] ?? 0);
    const epochAfter = Number(after[attributes.epoch] ?? 0);
    const where = `#${write.sequence} ${key.pk}/${key.sk}`;
    if (epochAfter < epochBefore) violations.push(`${where}: epoch went back ${epochBefore} → ${epochAfter}`);
    const setsEpoch =
      operation.kind === "put"
        ? attributes.epoch in operation.item
        : operation.kind === "update" && attributes.epoch in (operation.changes.set ?? {});
    if (!setsEpoch) continue;
    const ownerBefore = before?.[attributes.owner];
    const ownerAfter = String(after[attributes.owner]);
    const expiresBefore = Number(before?.[attributes.expiresAt] ?? 0);
    const free =
      ownerBefore === undefined ||
      expiresBefore < nowMs ||
      ownerBefore === ownerAfter ||
      allowTransfer(String(ownerBefore), ownerAfter);
    if (!free) {
      violations.push(
        `${where}: ${ownerAfter} took epoch ${epochAfter} from ${String(ownerBefore)}, whose lease ran until ${expiresBefore} (now ${nowMs})`,
      );
    }
    if (epochAfter !== epochBefore + 1) {
      violations.push(`${where}: epoch ${epochBefore} → ${epochAfter}, not the next one`);
    }
  }
  return violations;
}
