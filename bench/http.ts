export async function main(): Promise<void> {
  throw new Error("the http benchmark is not written yet");
}
