export { CLUSTER_IDENTITY_KEY, loadClusterId } from "./cluster-id.js";
export { DEFAULT_HOST, DEFAULT_PORT, type RunningServer, type ServerOptions, startServer } from "./server.js";
