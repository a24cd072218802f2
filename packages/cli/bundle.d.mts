// Types of bundle.mjs (plain JavaScript so that it runs before TypeScript can be loaded).
export declare const DEFAULT_ENTRY: string;
export declare const DEFAULT_OUTFILE: string;
/** Whether `outfile` exists and every source it was built from is unchanged. */
export declare function bundleIsFresh(outfile?: string): boolean;
/** Bundles `entry` into `outfile`; returns the number of source files. */
export declare function buildBundle(options?: { entry?: string; outfile?: string }): Promise<number>;
/** The bundle's file URL, built first when missing or stale; undefined when it cannot be built. */
export declare function freshBundle(outfile?: string): Promise<string | undefined>;
