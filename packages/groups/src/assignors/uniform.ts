/**
 * The default assignor, sticky and balanced in the spirit of KIP-848's server-side "uniform"
 * assignor and Kafka's CooperativeStickyAssignor. Every rebalance costs a revoke-then-assign round
 * trip per moved partition (ARCHITECTURE.md, "Reconciliation"), so it moves as little as it can
 * while still balancing. Four steps:
 *
 * 1. Keep: each member keeps the partitions of its previous target that still exist and that it
 *    still subscribes to. A partition two previous targets both name (which a consistent store
 *    never holds) stays with the first member in memberId order.
 * 2. Fill: every partition nobody kept goes to the subscribed member with the fewest, ties by
 *    memberId; topics with fewer subscribers first, since they have fewer places to go.
 * 3. Move: while some member holds a partition that a member with at least two fewer could take,
 *    move one from the most loaded such member to the least loaded such taker, preferring a
 *    partition filled in step 2 (moving it costs nothing). With identical subscriptions this alone
 *    balances to within one, and moves exactly the minimum number of kept partitions.
 * 4. Chains: with differing subscriptions a single move may be impossible although the counts
 *    could still be evened out: A could hand a partition to B, B one of another topic to C. While
 *    such a chain exists from a member to one with at least two fewer, the shortest is applied:
 *    the ends change by one, everyone in between keeps its count.
 *
 * Why the result is as balanced as the subscriptions allow: steps 3 and 4 stop only when no chain
 * from a member to one with two fewer remains. An assignment without such a chain minimises the
 * sum of squared counts and the largest count over all assignments the subscriptions allow (the
 * "cost-reducing path" criterion for optimal semi-matchings, Harvey, Ladner, Lovász and Tamir,
 * 2003). Two members with the same subscriptions can never differ by more than one, since one
 * move between them would be such a chain. Each move lowers the sum of squares by at least 2,
 * so the loops end.
 *
 * Steps 3 and 4 run first handing on only partitions nobody kept (free to move), then any.
 *
 * How few it moves: with identical subscriptions, exactly the fewest kept partitions any
 * assignment balanced to within one needs (each member gives up only what it keeps beyond its
 * quota). With differing subscriptions the greedy fill and the order of moves can cost more than
 * the fewest: on small random groups, about one case in several thousand moves one partition more
 * than a brute-force search needs for the same balance. An exact answer is a min-cost flow, not
 * worth its cost here.
 *
 * Counts are totals across topics, as KIP-848's uniform assignor balances them; a member may hold
 * more of one topic than another member does.
 *
 * Deterministic: members are taken in memberId order, topics and partitions in code-unit and
 * numeric order, and the input's own order (of `members`, of object keys) is never consulted. A
 * second run with the first run's output as `previous` returns it unchanged.
 */
import type { Assignment, AssignmentInput, Assignor, TopicPartition } from "./assignor.js";
import {
  compareStrings,
  type NormalizedMember,
  normalizeMembers,
  partitionCountOf,
  previousOf,
  toAssignment,
} from "./normalize.js";

const UNASSIGNED = -1;

interface TopicState {
  /** Members (indexes in memberId order) subscribed to the topic, ascending. */
  subscribers: number[];
  /** Current owner per partition, UNASSIGNED until one is chosen. */
  owner: Int32Array;
  /** Who kept the partition from its previous target in step 1, UNASSIGNED if nobody. */
  keptBy: Int32Array;
}

interface Move {
  from: number;
  to: number;
  topic: string;
}

class UniformState {
  readonly counts: number[];
  /** Per member, per topic, the partitions it holds now. */
  readonly owned: Map<string, Set<number>>[];
  readonly topics = new Map<string, TopicState>();

  constructor(
    readonly members: NormalizedMember[],
    partitionCounts: AssignmentInput["partitionCounts"],
  ) {
    this.counts = members.map(() => 0);
    this.owned = members.map(() => new Map());
    members.forEach((member, index) => {
      for (const topic of member.topics) {
        let state = this.topics.get(topic);
        if (state === undefined) {
          const count = partitionCountOf(partitionCounts, topic);
          if (count === 0) continue;
          state = {
            subscribers: [],
            owner: new Int32Array(count).fill(UNASSIGNED),
            keptBy: new Int32Array(count).fill(UNASSIGNED),
          };
          this.topics.set(topic, state);
        }
        state.subscribers.push(index);
      }
    });
  }

  give(member: number, topic: string, partition: number): void {
    const state = this.topics.get(topic)!;
    const from = state.owner[partition]!;
    if (from !== UNASSIGNED) {
      this.owned[from]!.get(topic)!.delete(partition);
      this.counts[from]!--;
    }
    state.owner[partition] = member;
    let set = this.owned[member]!.get(topic);
    if (set === undefined) {
      set = new Set();
      this.owned[member]!.set(topic, set);
    }
    set.add(partition);
    this.counts[member]!++;
  }

  /** Step 1. */
  keep(previous: AssignmentInput["previous"]): void {
    this.members.forEach((member, index) => {
      for (const { topic, partition } of previousOf(previous, member.memberId)) {
        // `topics` holds only existing topics, and only members subscribed are its subscribers.
        const state = this.topics.get(topic);
        if (state === undefined || !Number.isInteger(partition) || partition < 0) continue;
        if (partition >= state.owner.length || state.owner[partition] !== UNASSIGNED) continue;
        if (!this.subscribes(index, topic)) continue;
        this.give(index, topic, partition);
        state.keptBy[partition] = index;
      }
    });
  }

  /** Step 2. */
  fill(): void {
    const order = [...this.topics].sort(
      ([nameA, a], [nameB, b]) => a.subscribers.length - b.subscribers.length || compareStrings(nameA, nameB),
    );
    for (const [topic, state] of order) {
      for (let partition = 0; partition < state.owner.length; partition++) {
        if (state.owner[partition] !== UNASSIGNED) continue;
        let best = state.subscribers[0]!;
        for (const candidate of state.subscribers) {
          if (this.counts[candidate]! < this.counts[best]!) best = candidate;
        }
        this.give(best, topic, partition);
      }
    }
  }

  /** Step 3; with `freshOnly`, handing on only partitions that were not kept. */
  balanceByMoves(freshOnly: boolean): void {
    for (
      let move = this.findSingleMove(freshOnly);
      move !== undefined;
      move = this.findSingleMove(freshOnly)
    ) {
      this.apply(move);
    }
  }

  /** Step 4; with `freshOnly`, handing on only partitions that were not kept. */
  balanceByChains(freshOnly: boolean): void {
    for (let chain = this.findChain(freshOnly); chain !== undefined; chain = this.findChain(freshOnly)) {
      // From the far end back, so every giver still holds what it gives.
      for (let i = chain.length - 1; i >= 0; i--) this.apply(chain[i]!);
    }
  }

  toAssignment(): Assignment {
    return toAssignment(
      this.members.map((member, index) => {
        const partitions: TopicPartition[] = [];
        for (const [topic, set] of this.owned[index]!) {
          for (const partition of set) partitions.push({ topic, partition });
        }
        return [member.memberId, partitions] as const;
      }),
    );
  }

  private subscribes(member: number, topic: string): boolean {
    return this.topics.get(topic)?.subscribers.includes(member) ?? false;
  }

  /** Members most loaded first, ties by memberId; and the fewest any member that can take a partition has. */
  private loadOrder(): { order: number[]; fewest: number } {
    const order = this.members.map((_, index) => index);
    order.sort((a, b) => this.counts[b]! - this.counts[a]! || a - b);
    let fewest = Number.POSITIVE_INFINITY;
    for (const state of this.topics.values()) {
      for (const member of state.subscribers) fewest = Math.min(fewest, this.counts[member]!);
    }
    return { order, fewest };
  }

  private findSingleMove(freshOnly: boolean): Move | undefined {
    const { order, fewest } = this.loadOrder();
    for (const from of order) {
      const load = this.counts[from]!;
      if (load < fewest + 2) return undefined;
      let best: { move: Move; fresh: boolean } | undefined;
      for (const topic of this.members[from]!.topics) {
        const fresh = this.pickPartition(from, topic)?.fresh;
        if (fresh === undefined || (freshOnly && !fresh)) continue;
        const state = this.topics.get(topic)!;
        let to = UNASSIGNED;
        for (const candidate of state.subscribers) {
          if (candidate !== from && (to === UNASSIGNED || this.counts[candidate]! < this.counts[to]!))
            to = candidate;
        }
        if (to === UNASSIGNED || this.counts[to]! > load - 2) continue;
        // Fewest-loaded taker first; then a partition whose move costs nothing; then memberId.
        if (
          best === undefined ||
          this.counts[to]! < this.counts[best.move.to]! ||
          (this.counts[to] === this.counts[best.move.to] && fresh && !best.fresh) ||
          (this.counts[to] === this.counts[best.move.to] && fresh === best.fresh && to < best.move.to)
        ) {
          best = { move: { from, to, topic }, fresh };
        }
      }
      if (best !== undefined) return best.move;
    }
    return undefined;
  }

  /** The shortest chain (breadth first) from the most loaded member that has one; links in order. */
  private findChain(freshOnly: boolean): Move[] | undefined {
    const { order, fewest } = this.loadOrder();
    for (const start of order) {
      const load = this.counts[start]!;
      if (load < fewest + 2) return undefined;
      const reachedBy = new Map<number, Move>();
      const queue = [start];
      const seen = new Set(queue);
      for (let head = 0; head < queue.length; head++) {
        const from = queue[head]!;
        for (const topic of this.members[from]!.topics) {
          const fresh = this.pickPartition(from, topic)?.fresh;
          if (fresh === undefined || (freshOnly && !fresh)) continue;
          for (const to of this.topics.get(topic)!.subscribers) {
            if (seen.has(to)) continue;
            seen.add(to);
            reachedBy.set(to, { from, to, topic });
            if (this.counts[to]! <= load - 2) {
              const chain: Move[] = [];
              for (let at = to; at !== start; at = chain[0]!.from) chain.unshift(reachedBy.get(at)!);
              return chain;
            }
            queue.push(to);
          }
        }
      }
    }
    return undefined;
  }

  private apply(move: Move): void {
    this.give(move.to, move.topic, this.pickPartition(move.from, move.topic)!.partition);
  }

  /** Which of `member`'s partitions of `topic` to hand on: one it did not keep (free to move), else the highest. */
  private pickPartition(member: number, topic: string): { partition: number; fresh: boolean } | undefined {
    // A subscribed topic that does not exist has no state, and the member holds none of it.
    const keptBy = this.topics.get(topic)?.keptBy;
    if (keptBy === undefined) return undefined;
    let best: { partition: number; fresh: boolean } | undefined;
    for (const partition of this.owned[member]!.get(topic) ?? []) {
      const fresh = keptBy[partition] !== member;
      if (
        best === undefined ||
        (fresh && !best.fresh) ||
        (fresh === best.fresh && partition > best.partition)
      ) {
        best = { partition, fresh };
      }
    }
    return best;
  }
}

function assignUniform(input: AssignmentInput): Assignment {
  const state = new UniformState(normalizeMembers(input.members), input.partitionCounts);
  state.keep(input.previous);
  state.fill();
  // Moving what nobody kept costs nothing, so even out with that first and only then move kept
  // partitions: this repairs, for free, the fill's greedy choices that a later member needed.
  state.balanceByMoves(true);
  state.balanceByChains(true);
  state.balanceByMoves(false);
  state.balanceByChains(false);
  return state.toAssignment();
}

export const uniformAssignor: Assignor = { name: "uniform", assign: assignUniform };
