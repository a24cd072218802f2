export * from "./lease.js";
