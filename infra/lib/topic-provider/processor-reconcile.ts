import type { ApiResponse, CallApi } from "./reconcile.js";

/**
 * The processor custom resource's logic (`Custom::SluiceProcessor`), served by the same provider
 * function as topics. Every change goes through the HTTP apps' processor routes: a declared
 * processor is checked and stored exactly as `POST …/processors` from any client would be, and an
 * update (`PUT …/processors/{name}`) keeps its checkpoints.
 */
export interface ProcessorResourceProperties {
  ClusterId: string;
  ProcessorName: string;
  /** The definition as JSON text (CloudFormation would turn its numbers into strings). */
  Definition: string;
}

export interface ProcessorEvent {
  RequestType: "Create" | "Update" | "Delete";
  PhysicalResourceId?: string;
  ResourceProperties: ProcessorResourceProperties;
}

export interface ProcessorResult {
  physicalResourceId: string;
  data: { ClusterId: string; ProcessorName: string };
}

export class ProcessorProviderError extends Error {
  override readonly name = "ProcessorProviderError";
}

export async function onProcessorEvent(event: ProcessorEvent, callApi: CallApi): Promise<ProcessorResult> {
  const { ClusterId: clusterId, ProcessorName: name, Definition: text } = event.ResourceProperties;
  if (!clusterId) throw new ProcessorProviderError("ClusterId is required");
  if (!name) throw new ProcessorProviderError("ProcessorName is required");
  const physicalResourceId = `${clusterId}/processor/${name}`;
  const result = { physicalResourceId, data: { ClusterId: clusterId, ProcessorName: name } };
  const path = `/v3/clusters/${encodeURIComponent(clusterId)}/processors/${encodeURIComponent(name)}`;
  if (event.RequestType === "Delete") {
    // A failed create reports another id; there is nothing to delete then.
    if (event.PhysicalResourceId !== physicalResourceId) return result;
    const response = await callApi("DELETE", path);
    if (isSuccess(response) || response.status === 404) return result;
    throw apiError("delete processor", name, response);
  }
  let definition: unknown;
  try {
    definition = JSON.parse(text);
  } catch {
    throw new ProcessorProviderError(`Definition is not JSON: processor=${name}`);
  }
  // Create, a retried create, an update, or a new name (CloudFormation then deletes the old one):
  // PUT creates the processor or brings it to the definition, keeping its progress.
  const response = await callApi("PUT", path, definition);
  if (!isSuccess(response))
    throw apiError(event.RequestType === "Create" ? "create processor" : "update processor", name, response);
  return result;
}

function isSuccess(response: ApiResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

function apiError(action: string, name: string, response: ApiResponse): ProcessorProviderError {
  const body = response.body;
  const message =
    typeof body === "object" && body !== null && typeof (body as { message?: unknown }).message === "string"
      ? (body as { message: string }).message
      : JSON.stringify(body);
  return new ProcessorProviderError(
    `${action} failed: processor=${name} status=${response.status} message=${message}`,
  );
}
