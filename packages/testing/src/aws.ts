/**
 * SDK client settings for the integration suites: the endpoint the global setup chose, path-style
 * S3 addressing (emulators do not resolve virtual-host bucket names on 127.0.0.1), and few
 * retries so a broken emulator fails fast instead of hanging a test.
 */
export function awsClientConfig(): {
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  maxAttempts: number;
} {
  return {
    endpoint: process.env.AWS_ENDPOINT_URL,
    region: process.env.AWS_REGION ?? "us-east-1",
    forcePathStyle: true,
    maxAttempts: 3,
  };
}

export function hasAwsEndpoint(): boolean {
  return Boolean(process.env.AWS_ENDPOINT_URL);
}
