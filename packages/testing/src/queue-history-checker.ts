/**
 * A history checker for queues (share groups), in the spirit of Jepsen's queue checker: given what
 * was produced, every delivery to a member (with its delivery count and the lock's end as the
 * member was told), every acknowledgement and its outcome as the member saw it, and what the
 * dead-letter topic holds, it names every anomaly:
 * - lost: a produced record neither accepted nor dead-lettered (an ACCEPT whose answer never came,
 *   from a member that was killed or cut off, or that was refused as already settled — a resend
 *   after a lost answer — counts as accepted when nobody got the record after it; such records are
 *   counted as `unconfirmed`);
 * - accepted twice: two ACCEPTs of one record that the server both confirmed;
 * - accepted and dead-lettered; dead-lettered twice;
 * - delivered after acceptance: a delivery that began after an ACCEPT of the record was confirmed;
 * - held twice: a record delivered to a member while another member's lock on it still held (on
 *   the shared machine clock) and that member had not given it back (confirmed) before;
 * - bad delivery counts: counts that do not rise with each delivery of a record, or pass the limit.
 */
export interface QueueProduced {
  partition: number;
  offset: number;
}

export interface QueueDelivery {
  member: string;
  partition: number;
  offset: number;
  deliveryCount: number;
  atMs: number;
  /** The lock's end as the member was told (counted from when it asked). */
  lockExpiresAtMs: number;
}

export interface QueueAcknowledgement {
  member: string;
  partition: number;
  offset: number;
  type: "ACCEPT" | "RELEASE" | "REJECT";
  /** confirmed: the server applied it; refused: it answered no; unknown: no answer came. */
  outcome: "confirmed" | "refused" | "unknown";
  /** When the outcome was known (or the member gave up on it). */
  atMs: number;
  /**
   * When the member asked for it. The server applies it before answering, so another member may be
   * handed a released record before the releasing member hears back: a give-back counts from here.
   */
  askedAtMs?: number;
  /** A refusal's reason, as the server gave it. */
  reason?: string;
}

export interface QueueDeadLetter {
  partition: number;
  offset: number;
  deliveryCount: number;
  reason: string;
}

export interface QueueHistory {
  produced: QueueProduced[];
  deliveries: QueueDelivery[];
  acknowledgements: QueueAcknowledgement[];
  deadLetters: QueueDeadLetter[];
  deliveryCountLimit: number;
}

export interface QueueCheckResult {
  lost: QueueProduced[];
  acceptedTwice: QueueProduced[];
  acceptedAndDeadLettered: QueueProduced[];
  deadLetteredTwice: QueueProduced[];
  deliveredAfterAcceptance: QueueDelivery[];
  heldTwice: { earlier: QueueDelivery; later: QueueDelivery }[];
  badDeliveryCounts: QueueProduced[];
  /** Records settled by an ACCEPT whose answer never came (and which nobody got again). */
  unconfirmed: number;
  /** Deliveries beyond the first, across all records. */
  redeliveries: number;
  /**
   * Deliveries the server counted that no handler reported (delivery counts that jumped): records
   * locked to a member that died or dropped them before handing them out.
   */
  unseenDeliveries: number;
}

export function checkQueueHistory(history: QueueHistory): QueueCheckResult {
  const key = (record: { partition: number; offset: number }) => `${record.partition}:${record.offset}`;
  const group = <T extends { partition: number; offset: number }>(items: T[]) => {
    const map = new Map<string, T[]>();
    for (const item of items) map.set(key(item), [...(map.get(key(item)) ?? []), item]);
    return map;
  };
  const deliveries = group([...history.deliveries].sort((a, b) => a.atMs - b.atMs));
  const acks = group([...history.acknowledgements].sort((a, b) => a.atMs - b.atMs));
  const letters = group(history.deadLetters);
  const result: QueueCheckResult = {
    lost: [],
    acceptedTwice: [],
    acceptedAndDeadLettered: [],
    deadLetteredTwice: [],
    deliveredAfterAcceptance: [],
    heldTwice: [],
    badDeliveryCounts: [],
    unconfirmed: 0,
    redeliveries: 0,
    unseenDeliveries: 0,
  };
  for (const record of history.produced) {
    const its = deliveries.get(key(record)) ?? [];
    const itsAcks = acks.get(key(record)) ?? [];
    const itsLetters = letters.get(key(record)) ?? [];
    result.redeliveries += Math.max(0, its.length - 1);
    const accepted = itsAcks.filter((ack) => ack.type === "ACCEPT" && ack.outcome === "confirmed");
    if (accepted.length > 1) result.acceptedTwice.push(record);
    if (accepted.length > 0 && itsLetters.length > 0) result.acceptedAndDeadLettered.push(record);
    if (itsLetters.length > 1) result.deadLetteredTwice.push(record);
    const firstAccepted = accepted[0];
    if (firstAccepted) {
      for (const delivery of its)
        if (delivery.atMs > firstAccepted.atMs) result.deliveredAfterAcceptance.push(delivery);
    }
    if (accepted.length === 0 && itsLetters.length === 0) {
      // An ACCEPT that may have landed, with nobody handed the record after the member asked: no
      // answer came, or the answer was to a resend after an attempt whose answer was lost (a
      // killed server) and the record was settled by then — the server no longer knows by whom.
      const unknown = itsAcks.find(
        (ack) =>
          ack.type === "ACCEPT" &&
          (ack.outcome === "unknown" ||
            (ack.outcome === "refused" && /already (acknowledged|settled)/.test(ack.reason ?? ""))) &&
          !its.some((delivery) => delivery.member !== ack.member && delivery.atMs > ack.atMs),
      );
      if (unknown) result.unconfirmed++;
      else result.lost.push(record);
    }
    let previousCount = 0;
    for (const delivery of its) {
      if (delivery.deliveryCount <= previousCount || delivery.deliveryCount > history.deliveryCountLimit)
        result.badDeliveryCounts.push(record);
      result.unseenDeliveries += Math.max(0, delivery.deliveryCount - previousCount - 1);
      previousCount = delivery.deliveryCount;
    }
    for (let index = 1; index < its.length; index++) {
      const later = its[index]!;
      for (const earlier of its.slice(0, index)) {
        if (earlier.member === later.member) continue;
        if (later.atMs >= earlier.lockExpiresAtMs) continue;
        // A refusal proves the server no longer had the earlier member as the holder when it
        // answered (its session ended, as under load, or its lock did): its hold ended by then.
        const refusedBefore = itsAcks.some(
          (ack) => ack.member === earlier.member && ack.outcome === "refused" && ack.atMs <= later.atMs,
        );
        if (refusedBefore) continue;
        // A give-back whose answer never came (the member died with it in flight) may have landed:
        // the history cannot tell, so it counts as one (the scenario suites judge each write).
        const givenBack = itsAcks.some(
          (ack) =>
            ack.member === earlier.member &&
            ack.outcome !== "refused" &&
            ack.type !== "ACCEPT" &&
            (ack.askedAtMs ?? ack.atMs) <= later.atMs,
        );
        if (!givenBack) result.heldTwice.push({ earlier, later });
      }
    }
  }
  return result;
}
