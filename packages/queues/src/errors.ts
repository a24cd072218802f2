import { ConflictError, FencedError, InvalidArgumentError, NotFoundError } from "@sluice/core";

/**
 * The share-group errors a client must tell apart, each with a stable `code` (Kafka's name for it
 * where Kafka has one).
 */

/** The member is not (or no longer) in the share group: it left, was expired, or never joined. */
export function unknownShareMember(groupId: string, memberId: string, why = "is not a member"): FencedError {
  return new FencedError(`member ${memberId} ${why} of share group ${groupId}; join again`, {
    code: "UNKNOWN_MEMBER_ID",
    details: { groupId, memberId },
  });
}

export function shareGroupNotFound(groupId: string): NotFoundError {
  return new NotFoundError(`share group not found: ${groupId}`, {
    code: "GROUP_ID_NOT_FOUND",
    details: { groupId },
  });
}

/** An operator's change (start offset reset) to a share group that still has members. */
export function shareGroupNotEmpty(groupId: string, members: number, action: string): ConflictError {
  return new ConflictError(
    `cannot ${action} share group ${groupId}: it has ${members} active member${members === 1 ? "" : "s"}; stop them (or wait for their sessions to end) first`,
    { code: "NON_EMPTY_GROUP", details: { groupId, members } },
  );
}

/** A join naming configs that differ from the ones the group was created with. */
export function configMismatch(groupId: string, differences: string[]): ConflictError {
  return new ConflictError(
    `share group ${groupId} exists with other configs (${differences.join("; ")}); join without configs or with the same ones`,
    { code: "INVALID_CONFIG", details: { groupId, differences } },
  );
}

export function invalidConfig(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { code: "INVALID_CONFIG" });
}
