/**
 * fast-check parameters that replay one failing run of a scenario suite: set
 * SLUICE_SCENARIO_SEED and SLUICE_SCENARIO_PATH to the `seed` and `path` its report printed.
 */
export function replayParameters(): { seed?: number; path?: string } {
  const seed = process.env.SLUICE_SCENARIO_SEED;
  const path = process.env.SLUICE_SCENARIO_PATH;
  return {
    ...(seed === undefined ? {} : { seed: Number(seed) }),
    ...(path === undefined ? {} : { path }),
  };
}
