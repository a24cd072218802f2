/**
 * Ground truth for the queue scenario suite: every write the store applies to a share group's
 * windows is judged against the windows as it found them (ARCHITECTURE.md, "Queues"). Per record
 * offset, the before and after states of the whole share-partition are compared:
 * - a record is acquired (its delivery count + 1) only from available, or from acquired with a
 *   lock that passed before the decision, never past `delivery.count.limit`, and comes out
 *   acquired by the writer with a lock of exactly the lock duration: never two holders at once;
 * - acknowledged and archived records never change again (a merge may only forget who settled
 *   them); dead letters due may only become archived;
 * - a holder's own change (accept, renew, release, reject) is decided before its lock passed;
 *   anyone else may only give back a record whose lock passed;
 * - a delivery count moves by one at each acquisition and never otherwise;
 * - records leave the window only settled, and only because the start offset passed them; fresh
 *   records enter only at the old end; the start and end never move back, and batches tile the
 *   window;
 * - only a member whose session lasts (at the decision) acquires; a combined acquisition names
 *   every member it acquired for, and each record goes to one of them.
 * It also keeps each record's acquisitions and settlements, for the suite's final checks.
 */
import type { Item, TransactOperation } from "@sluice/storage";
import type { AppliedWrite } from "@sluice/testing";
import { BATCH_PREFIX, STATE_SK } from "./keys.js";
import { decodeRuns, type Slot } from "./window.js";

export interface WindowCheckerOptions {
  groupId: string;
  deliveryCountLimit: number;
  lockDurationMs: number;
  deadLetter: boolean;
}

export interface Acquisition {
  member: string;
  deliveryCount: number;
  atMs: number;
  deadlineMs: number;
  sequence: number;
}

export interface Settlement {
  state: "acknowledged" | "archived";
  deliveries: number;
  sequence: number;
}

export interface RecordTrail {
  acquisitions: Acquisition[];
  settlements: Settlement[];
  /** Archived through a dead letter due (L or R written, then X). */
  deadLetterDue: boolean;
}

interface View {
  state: { start: number; end: number; epoch: number; version: number } | undefined;
  slots: Map<number, Slot>;
  versions: Map<string, number>;
}

export class WindowChecker {
  readonly violations: string[] = [];
  /** By `${topicId}:${partition}:${offset}`. */
  readonly trails = new Map<string, RecordTrail>();
  private readonly prefix: string;
  /** The writers of the write being judged whose sessions lasted (at the decision). */
  private liveWriters = new Set<string>();

  constructor(private readonly options: WindowCheckerOptions) {
    this.prefix = `share-partition#${options.groupId}#`;
  }

  trail(topicId: string, partition: number, offset: number): RecordTrail {
    const key = `${topicId}:${partition}:${offset}`;
    let trail = this.trails.get(key);
    if (!trail) {
      trail = { acquisitions: [], settlements: [], deadLetterDue: false };
      this.trails.set(key, trail);
    }
    return trail;
  }

  /** Call from RecordingMetadataStore's listener; `mirror` is its mirror (already after the write). */
  onApplied(write: AppliedWrite, mirror: ReadonlyMap<string, Item>): void {
    const pks = new Set<string>();
    for (const operation of write.operations) {
      const key = operation.kind === "put" ? operation.item : operation.key;
      if (key.pk.startsWith(this.prefix)) pks.add(key.pk);
    }
    for (const pk of pks) this.checkPartition(write, pk, mirror);
  }

  private checkPartition(write: AppliedWrite, pk: string, mirror: ReadonlyMap<string, Item>): void {
    const [topicId, partitionText] = pk.slice(this.prefix.length).split("#") as [string, string];
    const partition = Number(partitionText);
    const where = (offset?: number) =>
      `#${write.sequence} ${topicId.slice(0, 8)}/${partition}${offset === undefined ? "" : ` offset ${offset}`}`;
    const afterItems: Item[] = [];
    for (const [id, item] of mirror) if (id.startsWith(`${pk}\u0000`)) afterItems.push(item);
    const beforeItems = new Map<string, Item>(afterItems.map((item) => [`${item.pk}\u0000${item.sk}`, item]));
    for (const [id, item] of write.before) {
      if (!id.startsWith(`${pk}\u0000`)) continue;
      if (item) beforeItems.set(id, item);
      else beforeItems.delete(id);
    }
    const before = view(beforeItems.values());
    const after = view(afterItems);
    const stamp = stampOf(write.operations, pk);
    // Only a member whose session had not ended at the decision may take records.
    // A combined acquisition names every member it acquired for (ARCHITECTURE.md, "Queues").
    const writers = stamp.writtenBy.split(",");
    this.liveWriters = new Set(
      writers.filter((member) => {
        const item = mirror.get(`share-group#${this.options.groupId}\u0000member#${member}`);
        return item !== undefined && Number(item.sessionDeadlineMs) >= stamp.writtenAtMs;
      }),
    );
    const t = stamp.writtenAtMs;
    // One writer decides a holder's own change; a write for several members only acquires.
    const writer = writers.length === 1 ? writers[0]! : stamp.writtenBy;
    const limit = this.options.deliveryCountLimit;
    const bad = (message: string) => this.violations.push(message);

    for (const [id, version] of after.versions) {
      const previous = before.versions.get(id);
      const expected = previous === undefined ? 1 : previous + 1;
      if (write.after.has(id) && version !== expected)
        bad(`${where()} ${id.split("\u0000")[1]}: version ${previous} → ${version}`);
    }
    if (after.state && before.state) {
      if (after.state.start < before.state.start)
        bad(`${where()}: the start went back ${before.state.start} → ${after.state.start}`);
      if (after.state.end < before.state.end)
        bad(`${where()}: the end went back ${before.state.end} → ${after.state.end}`);
    }
    if (after.state) {
      if (after.slots.size !== after.state.end - after.state.start)
        bad(
          `${where()}: batches hold ${after.slots.size} records, the window spans ${after.state.end - after.state.start}`,
        );
    } else if (before.state) {
      bad(`${where()}: the window's state item was deleted`);
    }

    for (const [offset, was] of before.slots) {
      const now = after.slots.get(offset);
      const trail = this.trail(topicId, partition, offset);
      if (!now) {
        // Left the window: only settled, only passed by the start.
        // A lock that passed on a record out of deliveries archives it without a write of its own
        // (its dead letter, with a topic set, is checked at the end of the run).
        const implicitArchive = was.state === "Q" && was.deadlineMs < t && was.deliveries >= limit;
        // A dead letter due leaves once appended (the deletion stands in for its X; the end of the
        // run checks the dead-letter topic holds it once).
        const deadLettered = was.state === "L" || was.state === "R";
        if (!(was.state === "K" || was.state === "X" || implicitArchive || deadLettered))
          bad(`${where(offset)}: left the window unsettled (${was.state})`);
        if (!after.state || offset >= after.state.start)
          bad(`${where(offset)}: left the window without the start passing it`);
        if (implicitArchive) {
          if (this.options.deadLetter) trail.deadLetterDue = true;
          this.settle(trail, "archived", was.deliveries, write.sequence, where(offset));
        }
        continue;
      }
      this.checkTransition(trail, was, now, t, writer, writers, limit, write.sequence, where(offset));
    }
    for (const [offset, now] of after.slots) {
      if (before.slots.has(offset)) continue;
      const trail = this.trail(topicId, partition, offset);
      if (before.state && offset < before.state.end)
        bad(`${where(offset)}: entered the window below the old end ${before.state.end}`);
      if (
        now.state !== "Q" ||
        !writers.includes(now.member) ||
        now.deliveries !== 1 ||
        now.deadlineMs !== t + this.options.lockDurationMs
      ) {
        bad(`${where(offset)}: entered the window as ${JSON.stringify(now)}, not acquired by ${writer} once`);
        continue;
      }
      this.acquire(trail, now, t, write.sequence, where(offset));
    }
  }

  private checkTransition(
    trail: RecordTrail,
    was: Slot,
    now: Slot,
    t: number,
    writer: string,
    writers: string[],
    limit: number,
    sequence: number,
    where: string,
  ): void {
    const bad = (message: string) => this.violations.push(`${where}: ${message}`);
    if (was.state === "K" || was.state === "X") {
      if (now.state !== was.state || now.deliveries !== was.deliveries)
        bad(
          `settled ${was.state} changed to ${now.state} (deliveries ${was.deliveries} → ${now.deliveries})`,
        );
      return;
    }
    if (was.state === "L" || was.state === "R") {
      if ((now.state !== was.state && now.state !== "X") || now.deliveries !== was.deliveries)
        bad(`dead letter due (${was.state}) changed to ${now.state}`);
      return;
    }
    if (now.deliveries === was.deliveries + 1) {
      const free = was.state === "A" || (was.state === "Q" && was.deadlineMs < t);
      if (!free) bad(`acquired by ${writer} at ${t} while ${was.member} held it until ${was.deadlineMs}`);
      if (was.deliveries >= limit) bad(`acquired a ${was.deliveries + 1}th time, past the limit ${limit}`);
      if (
        now.state !== "Q" ||
        !writers.includes(now.member) ||
        now.deadlineMs !== t + this.options.lockDurationMs
      )
        bad(`an acquisition left ${JSON.stringify(now)}`);
      this.acquire(trail, now, t, sequence, where);
      return;
    }
    if (now.deliveries !== was.deliveries) {
      bad(`delivery count moved ${was.deliveries} → ${now.deliveries} without one acquisition`);
      return;
    }
    if (was.state === "A") {
      if (now.state !== "A") bad(`available record became ${now.state} without an acquisition`);
      return;
    }
    // Acquired by was.member until was.deadlineMs.
    if (now.state === was.state && now.member === was.member && now.deadlineMs === was.deadlineMs) return;
    const held = writer === was.member && was.deadlineMs >= t;
    const passed = was.deadlineMs < t;
    switch (now.state) {
      case "Q":
        if (now.member !== was.member)
          bad(`moved from ${was.member} to ${now.member} without an acquisition`);
        else if (!held)
          bad(`lock renewed by ${writer} at ${t}; ${was.member}'s lock ran until ${was.deadlineMs}`);
        else if (now.deadlineMs !== t + this.options.lockDurationMs) bad(`renewed to ${now.deadlineMs}`);
        return;
      case "K":
        if (!held || now.member !== was.member)
          bad(`acknowledged by ${writer} at ${t}; ${was.member}'s lock ran until ${was.deadlineMs}`);
        this.settle(trail, "acknowledged", now.deliveries, sequence, where);
        return;
      case "A":
        if (!(held || passed))
          bad(`given back by ${writer} at ${t} while ${was.member} held it until ${was.deadlineMs}`);
        if (was.deliveries >= limit)
          bad(`made available after ${was.deliveries} deliveries (limit ${limit})`);
        return;
      default:
        if (!(held || (passed && was.deliveries >= limit)))
          bad(
            `archived (${now.state}) by ${writer} at ${t}; ${was.member}'s lock ran until ${was.deadlineMs}, ${was.deliveries} deliveries`,
          );
        if ((now.state === "L" || now.state === "R") !== this.options.deadLetter && now.state !== "X")
          bad(`dead letter due (${now.state}) without a dead-letter topic`);
        if (now.state === "L" || now.state === "R") trail.deadLetterDue = true;
        else if (this.options.deadLetter) trail.deadLetterDue = true; // appended before it was written X
        this.settle(trail, "archived", now.deliveries, sequence, where);
    }
  }

  private acquire(trail: RecordTrail, slot: Slot, atMs: number, sequence: number, where: string): void {
    if (!this.liveWriters.has(slot.member))
      this.violations.push(`${where}: acquired by ${slot.member}, not a member whose session lasts`);
    trail.acquisitions.push({
      member: slot.member,
      deliveryCount: slot.deliveries,
      atMs,
      deadlineMs: slot.deadlineMs,
      sequence,
    });
    if (trail.acquisitions.length !== slot.deliveries)
      this.violations.push(
        `${where}: delivery count ${slot.deliveries} after ${trail.acquisitions.length} acquisitions`,
      );
  }

  private settle(
    trail: RecordTrail,
    state: Settlement["state"],
    deliveries: number,
    sequence: number,
    where: string,
  ): void {
    trail.settlements.push({ state, deliveries, sequence });
    if (trail.settlements.length > 1) this.violations.push(`${where}: settled a second time (${state})`);
    if (deliveries !== trail.acquisitions.length)
      this.violations.push(
        `${where}: settled with delivery count ${deliveries} after ${trail.acquisitions.length} acquisitions`,
      );
  }
}

function view(items: Iterable<Item>): View {
  let state: View["state"];
  const batches: Item[] = [];
  const versions = new Map<string, number>();
  for (const item of items) {
    versions.set(`${item.pk}\u0000${item.sk}`, Number(item.version));
    if (item.sk === STATE_SK)
      state = {
        start: Number(item.startOffset),
        end: Number(item.endOffset),
        epoch: Number(item.epoch),
        version: Number(item.version),
      };
    else if (item.sk.startsWith(BATCH_PREFIX)) batches.push(item);
  }
  const slots = new Map<number, Slot>();
  if (state) {
    for (const item of batches) {
      const base = Number(item.base);
      if (Number(item.epoch) !== state.epoch || base < state.start || base >= state.end) continue;
      decodeRuns(item.runs, Number(item.count), `${item.pk}/${item.sk}`).forEach((slot, index) => {
        slots.set(base + index, slot);
      });
    }
  }
  return { state, slots, versions };
}

function stampOf(
  operations: readonly TransactOperation[],
  pk: string,
): { writtenBy: string; writtenAtMs: number } {
  for (const operation of operations) {
    const values =
      operation.kind === "put" && operation.item.pk === pk
        ? operation.item
        : operation.kind === "update" && operation.key.pk === pk
          ? operation.changes.set
          : undefined;
    if (values && values.writtenAtMs !== undefined)
      return { writtenBy: String(values.writtenBy), writtenAtMs: Number(values.writtenAtMs) };
  }
  return { writtenBy: "", writtenAtMs: Number.NaN };
}
