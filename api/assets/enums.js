// The values of the API's enumerations that the dashboard offers as filters or orders by: the
// serde names of sdash-proto's enums (proto/src/records.rs). api/tests/dashboard_enums.rs fails
// when a list here and proto disagree, so keep each list a plain literal.

/** Vendor id and display name, in the order the fleet page groups systems. */
export const VENDORS = [
  ["pure", "Pure Storage FlashArray"],
  ["ontap", "NetApp ONTAP"],
  ["storagegrid", "NetApp StorageGRID"],
  ["datadomain", "Dell PowerProtect DataDomain"],
];
export const VENDOR_NAME = Object.fromEntries(VENDORS);
/** Poll statuses; `pending` is the API's status of a system that was never polled. */
export const STATUSES = ["online", "unreachable", "auth_failed", "error", "pending"];
/** Alert severities, most severe first. */
export const SEVERITIES = ["critical", "error", "warning", "info"];
export const SEV_RANK = { critical: 4, error: 3, warning: 2, info: 1 };
/** Event levels, least severe first (a "minimum level" filter compares positions). */
export const LEVELS = ["debug", "info", "warning", "error", "critical"];
export const CATEGORIES = ["connection", "authentication", "api_call", "data_query", "health"];
/** Component health, in the order components are listed (worst first). */
export const HEALTH_RANK = { error: 0, warning: 1, unknown: 2, ok: 3 };
/** Cluster types (a system's topology) and their names, as the fleet filter offers them. */
export const CLUSTER_TYPES = [
  ["ha", "HA pair"],
  ["metrocluster", "MetroCluster"],
  ["active-cluster", "ActiveCluster"],
  ["local", "Local (one node)"],
  ["multi-site", "Multi-site"],
  ["single-site", "Single site"],
];
export const CLUSTER_TYPE_NAME = Object.fromEntries(CLUSTER_TYPES);
