export { API_VERSION, type CreateAppOptions, createApp } from "./app.js";
export type { AppContext } from "./context.js";
export { DATA_TYPES, type Data, type DataType } from "./data-encoding.js";
export {
  type ClientDisconnectListener,
  consoleLogger,
  type ErrorBody,
  type Logger,
} from "./http-errors.js";
export { DEFAULT_LIMITS, type HttpLimits } from "./limits.js";
export type { DeliveryReport } from "./produce-records.js";
