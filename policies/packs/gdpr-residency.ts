import type { Pack } from "./pack.ts";

export const gdprResidency: Pack = {
  id: "gdpr-residency",
  title: "GDPR residency and storage limitation",
  description: "Where personal data may be processed and stored (allowed regions and zones per data classification), for how long, and how it is protected at rest.",
  controls: {
    "Art.44": "Transfers of personal data only under the conditions of Chapter V (residency)",
    "Art.5(1)(e)": "Storage limitation",
    "Art.32": "Security of processing (encryption)",
  },
};
