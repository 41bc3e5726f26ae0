/** The skills triage knows (API.md, "Intake"), offered as checkboxes to workers. */
export const SKILLS = [
  "plumbing",
  "electrical",
  "hvac",
  "appliance",
  "locksmith",
  "pest",
  "roofing",
  "carpentry",
  "painting",
  "cleaning",
  "landscaping",
  "general",
] as const;
