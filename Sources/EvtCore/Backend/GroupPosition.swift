/// How `group-create --reset` moves a group: to --from, or by --shift-by N events from where
/// it is; with `dryRun`, only the plan.
struct GroupReset {
    var shiftBy: Int64?
    var dryRun = false
}

/// One partition's committed offset, or a stream group's last-delivered id, before and after
/// a reset (`group-create --reset --dry-run` prints these, CONTRACT.md "Inventory and upkeep").
enum GroupPosition {
    /// `current` is nil when the group had no committed offset on the partition.
    case partition(topic: String, group: String, partition: Int32, current: Int64?, new: Int64)
    /// `current` is nil when the group does not exist yet (a dry run of its creation).
    case stream(stream: String, group: String, current: String?, new: String)
}
