/**
 * The /docs page: the OpenAPI document rendered as one self-contained HTML page on the server —
 * no scripts, no fonts, nothing fetched from elsewhere, so it works offline and under any CSP.
 */

export interface OpenApiDocument {
  info: { title: string; version: string; description?: string };
  paths?: Record<string, Record<string, Operation | undefined> | undefined>;
  components?: { schemas?: Record<string, unknown> };
}

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: unknown }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/** `{ $ref: "#/components/schemas/Topic" }` → a link to the schema's section. */
function schemaSummary(schema: unknown): string {
  if (schema && typeof schema === "object") {
    const ref = (schema as { $ref?: unknown }).$ref;
    if (typeof ref === "string") {
      const name = ref.split("/").pop() ?? ref;
      return `<a href="#schema-${escapeHtml(name)}"><code>${escapeHtml(name)}</code></a>`;
    }
    const type = (schema as { type?: unknown }).type;
    const values = (schema as { enum?: unknown[] }).enum;
    if (Array.isArray(values)) return `<code>${escapeHtml(values.map(String).join(" | "))}</code>`;
    if (typeof type === "string") return `<code>${escapeHtml(type)}</code>`;
  }
  return "<code>any</code>";
}

function renderOperation(method: string, path: string, operation: Operation): string {
  const id = `${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, "-");
  const parameters = operation.parameters ?? [];
  const body = Object.entries(operation.requestBody?.content ?? {});
  const responses = Object.entries(operation.responses ?? {});
  return `<section class="operation" id="${escapeHtml(id)}">
<h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
<p class="summary">${escapeHtml(operation.summary ?? "")}</p>
${operation.description ? `<p>${escapeHtml(operation.description)}</p>` : ""}
${
  parameters.length > 0
    ? `<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>${parameters
        .map(
          (parameter) =>
            `<tr><td><code>${escapeHtml(parameter.name)}</code>${parameter.required ? " *" : ""}</td><td>${escapeHtml(parameter.in)}</td><td>${schemaSummary(parameter.schema)}</td><td>${escapeHtml(parameter.description ?? "")}</td></tr>`,
        )
        .join("")}</table>`
    : ""
}
${
  body.length > 0
    ? `<p>Request body: ${body.map(([type, media]) => `${schemaSummary(media.schema)} (<code>${escapeHtml(type)}</code>)`).join(", ")}</p>`
    : ""
}
<table><tr><th>status</th><th>description</th><th>body</th></tr>${responses
    .map(
      ([status, response]) =>
        `<tr><td>${escapeHtml(status)}</td><td>${escapeHtml(response.description ?? "")}</td><td>${Object.entries(
          response.content ?? {},
        )
          .map(([type, media]) => `${schemaSummary(media.schema)} <small>${escapeHtml(type)}</small>`)
          .join("<br>")}</td></tr>`,
    )
    .join("")}</table>
</section>`;
}

export function renderDocsPage(document: OpenApiDocument): string {
  const operations: { method: string; path: string; operation: Operation }[] = [];
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item?.[method];
      if (operation) operations.push({ method, path, operation });
    }
  }
  const index = operations
    .map(
      ({ method, path, operation }) =>
        `<li><a href="#${escapeHtml(`${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, "-"))}"><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></a> ${escapeHtml(operation.summary ?? "")}</li>`,
    )
    .join("\n");
  const schemas = Object.entries(document.components?.schemas ?? {})
    .map(
      ([name, schema]) =>
        `<section id="schema-${escapeHtml(name)}"><h3><code>${escapeHtml(name)}</code></h3><pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre></section>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(document.info.title)} ${escapeHtml(document.info.version)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #1b1f24; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; }
pre { background: #f5f6f8; padding: 0.75rem; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5rem 0; width: 100%; }
th, td { border: 1px solid #d8dce2; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
.method { display: inline-block; min-width: 4.5em; font-weight: 600; font-family: ui-monospace, monospace; }
.get { color: #0b6e4f; } .post { color: #1d4ed8; } .put, .patch { color: #a16207; } .delete { color: #b91c1c; }
.operation { border-top: 1px solid #d8dce2; padding-top: 0.5rem; }
ul { padding-left: 1rem; }
</style>
</head>
<body>
<h1>${escapeHtml(document.info.title)} <small>${escapeHtml(document.info.version)}</small></h1>
${document.info.description ? `<p>${escapeHtml(document.info.description)}</p>` : ""}
<p>The machine-readable description is <a href="openapi.json"><code>/openapi.json</code></a> (OpenAPI 3.1).</p>
<h2>Operations</h2>
<ul>
${index}
</ul>
${operations.map(({ method, path, operation }) => renderOperation(method, path, operation)).join("\n")}
<h2>Schemas</h2>
${schemas}
</body>
</html>
`;
}
