"""Schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS by schemathesis.ts)."""

import schemathesis

# Two rules of the produce routes that OpenAPI 3.1 cannot state in a schema, so the document says
# them in words (docs/http-api.md, "The fuzz run") and the generator is told them here:
# - Sluice-Producer-Id, -Epoch and -Sequence go together, and with them every record of the
#   request names the same explicit partition_id: one parameter cannot depend on another, nor the
#   body on a header.
# - the ids of records:batch entries are unique: JSON Schema's uniqueItems compares whole items,
#   not one property of them; likewise an offset is acknowledged once per share-group request,
#   across its entries.
# Only requests generated as valid are completed (missing producer headers set to 0, every record
# sent to the first record's partition or 0, a repeated id given a suffix); invalid ones are sent
# as generated, so their mutation stays what is tested.
PRODUCER_HEADERS = ("sluice-producer-id", "sluice-producer-epoch", "sluice-producer-sequence")


def _generated_valid(case):
    meta = case.meta
    return meta is None or meta.generation.mode.is_positive


def _records(case):
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("entries"), list):
        return [entry for entry in body["entries"] if isinstance(entry, dict)]
    if isinstance(body, dict):
        return [body]
    return []


def _unique_batch_ids(case):
    body = case.body
    if not (isinstance(body, dict) and isinstance(body.get("entries"), list)):
        return
    seen = set()
    for index, entry in enumerate(body["entries"]):
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            while entry["id"] in seen:
                entry["id"] = f"{entry['id']}-{index}"
            seen.add(entry["id"])


def _unique_acknowledged_offsets(case):
    # An offset may be acknowledged once per request; uniqueItems says so within one entry only.
    body = case.body
    if not (isinstance(body, dict) and isinstance(body.get("acknowledgements"), list)):
        return
    seen = set()
    for entry in body["acknowledgements"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("offsets"), list)):
            continue
        where = (entry.get("topic_name"), entry.get("partition_id"))
        kept = [offset for offset in entry["offsets"] if (where, offset) not in seen]
        seen.update((where, offset) for offset in kept)
        entry["offsets"] = kept or [max(offset for (_, offset) in seen if isinstance(offset, int)) + 1]
        seen.add((where, entry["offsets"][0]))


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _generated_valid(case):
        return
    _unique_batch_ids(case)
    _unique_acknowledged_offsets(case)
    headers = case.headers
    if not headers:
        return
    present = {name.lower() for name in headers} & set(PRODUCER_HEADERS)
    if not present:
        return
    for name in PRODUCER_HEADERS:
        if name not in present:
            headers[name] = "0"
    records = _records(case)
    partition = records[0].get("partition_id", 0) if records else 0
    for record in records:
        record["partition_id"] = partition


# The binary produce route takes Kafka record batches (application/vnd.kafka.record-batch.v2),
# bytes no JSON Schema can describe; the document says `string`, `format: binary`. The generator's
# strings go out as their UTF-8 bytes (bytes as they are): the route must refuse them with a 4xx
# that names the problem, never fail with a 5xx.
@schemathesis.serializer("application/vnd.kafka.record-batch.v2")
def record_batch_bytes(ctx, value):
    if isinstance(value, bytes):
        return value
    if value is None:
        return b""
    return str(value).encode("utf-8")
