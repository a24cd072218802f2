import { describe, expect, it } from "vitest";
import { checkQueueHistory, type QueueAcknowledgement, type QueueDelivery } from "./queue-history-checker.js";

const produced = [0, 1, 2, 3].map((offset) => ({ partition: 0, offset }));
const deliver = (
  member: string,
  offset: number,
  deliveryCount: number,
  atMs: number,
  lockMs = 100,
): QueueDelivery => ({
  member,
  partition: 0,
  offset,
  deliveryCount,
  atMs,
  lockExpiresAtMs: atMs + lockMs,
});
const ack = (
  member: string,
  offset: number,
  type: QueueAcknowledgement["type"],
  atMs: number,
  outcome: QueueAcknowledgement["outcome"] = "confirmed",
): QueueAcknowledgement => ({ member, partition: 0, offset, type, outcome, atMs });

describe("queue history checker", () => {
  it("passes a clean history: a release redelivered, a lock passed, a rejection dead-lettered, an unanswered accept", () => {
    const result = checkQueueHistory({
      produced,
      deliveries: [
        deliver("a", 0, 1, 0),
        deliver("b", 0, 2, 20),
        deliver("a", 1, 1, 0),
        deliver("c", 1, 2, 150),
        deliver("a", 2, 1, 0),
        deliver("b", 3, 1, 5),
      ],
      acknowledgements: [
        ack("a", 0, "RELEASE", 10),
        ack("b", 0, "ACCEPT", 30),
        ack("c", 1, "ACCEPT", 160),
        ack("a", 2, "REJECT", 10),
        ack("b", 3, "ACCEPT", 8, "unknown"),
      ],
      deadLetters: [{ partition: 0, offset: 2, deliveryCount: 1, reason: "rejected" }],
      deliveryCountLimit: 3,
    });
    expect(result).toEqual({
      lost: [],
      acceptedTwice: [],
      acceptedAndDeadLettered: [],
      deadLetteredTwice: [],
      deliveredAfterAcceptance: [],
      heldTwice: [],
      badDeliveryCounts: [],
      unconfirmed: 1,
      redeliveries: 2,
      unseenDeliveries: 0,
    });
  });

  it("counts a release as given back from when it was asked: the next holder may be handed it before the answer", () => {
    const history = (askedAtMs?: number) =>
      checkQueueHistory({
        produced: [{ partition: 0, offset: 0 }],
        deliveries: [deliver("a", 0, 1, 0), deliver("b", 0, 2, 20)],
        acknowledgements: [
          { ...ack("a", 0, "RELEASE", 25), ...(askedAtMs === undefined ? {} : { askedAtMs }) },
          ack("b", 0, "ACCEPT", 30),
        ],
        deadLetters: [],
        deliveryCountLimit: 3,
      });
    expect(history(15).heldTwice).toEqual([]);
    // Asked after b was handed the record (or its asking unknown): two holders.
    expect(history(22).heldTwice).toHaveLength(1);
    expect(history().heldTwice).toHaveLength(1);
  });

  it("counts a release whose answer never came (its member died) as possibly given back; a refusal ends the hold when it is answered", () => {
    const history = (outcome: QueueAcknowledgement["outcome"], atMs: number) =>
      checkQueueHistory({
        produced: [{ partition: 0, offset: 0 }],
        deliveries: [deliver("a", 0, 1, 0), deliver("b", 0, 2, 20)],
        acknowledgements: [ack("a", 0, "RELEASE", atMs, outcome), ack("b", 0, "ACCEPT", 30)],
        deadLetters: [],
        deliveryCountLimit: 3,
      });
    // An unknown outcome is recorded when asked.
    expect(history("unknown", 15).heldTwice).toEqual([]);
    expect(history("unknown", 22).heldTwice).toHaveLength(1);
    // Refused at 15: the server no longer had `a` as the holder then (its session or lock ended),
    // so `b` being handed it at 20 is no second holder. Refused only at 25, after `b` had it: two.
    expect(history("refused", 15).heldTwice).toEqual([]);
    expect(history("refused", 25).heldTwice).toHaveLength(1);
  });

  it("counts an ACCEPT refused as already settled (a resend after a lost answer) as possibly landed, unless another member got the record after it", () => {
    const settled = (member: string, offset: number, atMs: number): QueueAcknowledgement => ({
      ...ack(member, offset, "ACCEPT", atMs, "refused"),
      reason: `record ${offset} of jobs/0 is already settled`,
    });
    const result = checkQueueHistory({
      produced: produced.slice(0, 2),
      deliveries: [deliver("a", 0, 1, 0), deliver("a", 1, 1, 0), deliver("b", 1, 2, 200)],
      acknowledgements: [settled("a", 0, 10), settled("a", 1, 10)],
      deadLetters: [],
      deliveryCountLimit: 5,
    });
    expect(result.unconfirmed).toBe(1);
    expect(result.lost).toEqual([{ partition: 0, offset: 1 }]);
  });

  it("names lost records, double acceptance, redelivery after acceptance, two holders and bad counts", () => {
    const result = checkQueueHistory({
      produced,
      deliveries: [
        deliver("a", 0, 1, 0),
        deliver("b", 0, 1, 50),
        deliver("a", 1, 1, 0),
        deliver("b", 1, 2, 200),
        deliver("a", 3, 1, 0),
      ],
      acknowledgements: [
        ack("a", 0, "ACCEPT", 60),
        ack("b", 0, "ACCEPT", 70),
        ack("a", 1, "ACCEPT", 10),
        ack("a", 3, "RELEASE", 10, "refused"),
      ],
      deadLetters: [
        { partition: 0, offset: 1, deliveryCount: 2, reason: "delivery-count-limit" },
        { partition: 0, offset: 1, deliveryCount: 2, reason: "delivery-count-limit" },
      ],
      deliveryCountLimit: 3,
    });
    expect(result.lost.map((record) => record.offset)).toEqual([2, 3]);
    expect(result.acceptedTwice.map((record) => record.offset)).toEqual([0]);
    expect(result.acceptedAndDeadLettered.map((record) => record.offset)).toEqual([1]);
    expect(result.deadLetteredTwice.map((record) => record.offset)).toEqual([1]);
    expect(result.deliveredAfterAcceptance.map((delivery) => [delivery.member, delivery.offset])).toEqual([
      ["b", 1],
    ]);
    expect(
      result.heldTwice.map(({ earlier, later }) => [earlier.member, later.member, later.offset]),
    ).toEqual([["a", "b", 0]]);
    expect(result.badDeliveryCounts.map((record) => record.offset)).toEqual([0]);
  });
});
