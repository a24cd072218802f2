import { nodeRequestBytes } from "./node-transport.js";
import { describeTransport } from "./transport.behaviour.js";

// The client sends `https:` requests this way; the behaviour is checked over plain HTTP.
describeTransport("the node:http transport", nodeRequestBytes);
