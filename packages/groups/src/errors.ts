import { ConflictError, FencedError, InvalidArgumentError, NotFoundError } from "@sluice/core";

/**
 * The group errors a client must tell apart, each with Kafka's name for it as `code` (and the
 * Confluent REST Proxy's five-digit code where its v2 API defines one).
 */

/** The member is not (or no longer) in the group: it was expired, left, or never joined. Rejoin. */
export function unknownMember(groupId: string, memberId: string, why = "is not a member"): FencedError {
  return new FencedError(`member ${memberId} ${why} of group ${groupId}; join again`, {
    code: "UNKNOWN_MEMBER_ID",
    details: { groupId, memberId },
  });
}

/** The member's epoch is not its current one: a stale incarnation or a lost answer too far back. */
export function fencedMemberEpoch(
  groupId: string,
  memberId: string,
  sent: number,
  current: number,
): FencedError {
  return new FencedError(
    `member ${memberId} of group ${groupId} sent epoch ${sent}, but its epoch is ${current}; join again`,
    { code: "FENCED_MEMBER_EPOCH", details: { groupId, memberId, sent, current } },
  );
}

/** A commit for a partition the member does not own (never had it, or lost it to a rebalance). */
export function notAssigned(
  groupId: string,
  memberId: string,
  topic: string,
  partition: number,
  owner: string | undefined,
): FencedError {
  return new FencedError(
    `partition ${partition} of topic ${topic} is not assigned to member ${memberId} of group ${groupId}${owner ? ` (member ${owner} owns it)` : ""}; nothing was committed`,
    { code: "FENCED_MEMBER_EPOCH", details: { groupId, memberId, topic, partition, owner } },
  );
}

export function groupNotFound(groupId: string): NotFoundError {
  return new NotFoundError(`consumer group not found: ${groupId}`, {
    code: "GROUP_ID_NOT_FOUND",
    details: { groupId },
  });
}

/** An admin change (offset reset, deletion) to a group that still has members. */
export function groupNotEmpty(groupId: string, members: number, action: string): ConflictError {
  return new ConflictError(
    `cannot ${action} consumer group ${groupId}: it has ${members} active member${members === 1 ? "" : "s"}; stop them (or wait for their sessions to end) first`,
    { code: "NON_EMPTY_GROUP", details: { groupId, members } },
  );
}

export function invalidGroupId(groupId: unknown): InvalidArgumentError {
  return new InvalidArgumentError(
    `invalid consumer group id ${JSON.stringify(groupId)}: use 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'`,
    { code: "INVALID_GROUP_ID" },
  );
}

/** Kafka's rule for group ids is looser; ours matches topic names so ids are safe in paths and keys. */
const GROUP_ID_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;

export function validateGroupId(groupId: unknown): asserts groupId is string {
  if (typeof groupId !== "string" || !GROUP_ID_PATTERN.test(groupId)) throw invalidGroupId(groupId);
}
