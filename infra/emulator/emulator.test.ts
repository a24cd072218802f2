import { describe, expect, it } from "vitest";
import { sign, xmlValue, xmlValues } from "./aws-query.js";
import { reachableApiUrl } from "./deploy.js";

describe("reachableApiUrl", () => {
  const url = "https://abcdefghij0123456789abcdefghij01.lambda-url.us-east-1.on.aws/";

  it("serves MiniStack's AWS-shaped Function URL through the emulator's path form", () => {
    expect(reachableApiUrl(url, "http://127.0.0.1:4566")).toBe(
      "http://127.0.0.1:4566/_aws/lambda-url/abcdefghij0123456789abcdefghij01",
    );
    expect(reachableApiUrl(url, "http://localhost:4566/")).toBe(
      "http://localhost:4566/_aws/lambda-url/abcdefghij0123456789abcdefghij01",
    );
  });

  it("keeps real AWS and LocalStack URLs, without the trailing slash", () => {
    expect(reachableApiUrl(url, undefined)).toBe(url.slice(0, -1));
    expect(reachableApiUrl(url, "https://cloudformation.us-east-1.amazonaws.com")).toBe(url.slice(0, -1));
    const localstack = "http://abc123.lambda-url.us-east-1.localhost.localstack.cloud:4566/";
    expect(reachableApiUrl(localstack, "http://127.0.0.1:4566")).toBe(localstack.slice(0, -1));
  });
});

describe("the Query-protocol client", () => {
  it("signs like botocore's SigV4Auth", () => {
    // Expected value computed with botocore.auth.SigV4Auth for the same request and clock.
    const headers = sign({
      service: "cloudformation",
      region: "us-east-1",
      host: "127.0.0.1:4566",
      body: "Action=DescribeStacks&Version=2010-05-15&StackName=My%20Stack",
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      sessionToken: "tok",
      date: new Date("2015-08-30T12:36:00Z"),
    });
    expect(headers).toEqual({
      "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      "x-amz-date": "20150830T123600Z",
      "x-amz-security-token": "tok",
      authorization:
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/cloudformation/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=df4281079048c9d897f30426a17d4c94dd5d4c814b76508d9d05f27fb71eab02",
    });
  });

  it("reads values out of XML answers", () => {
    const xml =
      "<R><StackStatus>CREATE_COMPLETE</StackStatus><OutputKey>A</OutputKey><OutputKey>B&amp;C</OutputKey></R>";
    expect(xmlValue(xml, "StackStatus")).toBe("CREATE_COMPLETE");
    expect(xmlValue(xml, "Missing")).toBeUndefined();
    expect(xmlValues(xml, "OutputKey")).toEqual(["A", "B&C"]);
  });
});
