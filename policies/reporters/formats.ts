/** The report formats of `gpufabric check`: apart from the reporters, so that its help imports none of them. */
export const FORMATS = ["text", "json", "sarif", "markdown", "junit"] as const;
export type Format = (typeof FORMATS)[number];
