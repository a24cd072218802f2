/**
 * An assignor computes a group's target assignment from its members and their subscriptions. It
 * is a pure function: every function instance computing it from the same stored state gets the
 * same answer, which is what lets any instance act as the coordinator.
 */
export interface AssignorMember {
  memberId: string;
  /** Topic names the member subscribes to. */
  topics: readonly string[];
  /** Its static instance id, if any: assignors may order members by it for stability. */
  instanceId?: string;
}

export interface AssignmentInput {
  /** Members in any order; assignors sort them themselves (by memberId) so order never matters. */
  members: readonly AssignorMember[];
  /** Partition count per topic; a subscribed topic missing here (or with 0) has nothing to assign. */
  partitionCounts: Readonly<Record<string, number>>;
  /** The previous target per member (partitions as TopicPartition), for sticky assignors. */
  previous: Readonly<Record<string, readonly TopicPartition[]>>;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** The target: every member of the input has an entry (possibly empty), partitions sorted. */
export type Assignment = Record<string, TopicPartition[]>;

export interface Assignor {
  readonly name: AssignorName;
  assign(input: AssignmentInput): Assignment;
}

export type AssignorName = "uniform" | "range";
