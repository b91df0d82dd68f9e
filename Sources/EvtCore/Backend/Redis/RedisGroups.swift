/// Consumer groups of a Redis stream, beside KafkaGroups: created by group-create and by
/// `subscribe --create`.
enum RedisGroups {
    /// Creates `group` (and the stream, if absent) delivering the entries after `from`.
    /// False when the group existed already (it is left as it is). `start` is the XGROUP id.
    static func create(_ group: String, on stream: String, from: Position,
                       connection: RedisConnection) throws -> (created: Bool, start: String) {
        let start = try StreamPositions.idBefore(from)
        switch try connection.call(["XGROUP", "CREATE", stream, group, start, "MKSTREAM"]) {
        case .error(let message) where RedisErrorReply.cause(message) == .refused(code: "BUSYGROUP"):
            return (false, start)
        case .error(let message):
            throw RedisErrorReply.error(message, "cannot create group \(group) on stream \(stream)")
        default:
            return (true, start)
        }
    }

    /// `evt group-create stream:S GROUP [--from POSITION] [--reset]`.
    static func create(group: String, server: RedisServerAddress, stream: String, from: Position,
                       reset: Bool) throws -> ExitStatus {
        let connection = try RedisConnection.open(server, key: stream)
        let (created, start) = try create(group, on: stream, from: from, connection: connection)
        if created {
            Diagnostics.print("created group \(group) on stream \(stream), delivering entries after \(start)")
            return .success
        }
        guard reset else {
            Diagnostics.print("group \(group) already exists on stream \(stream); left as it is (--reset moves it to --from).")
            return .success
        }
        if case .error(let message) = try connection.call(["XGROUP", "SETID", stream, group, start]) {
            throw RedisErrorReply.error(message, "cannot move group \(group) on stream \(stream)")
        }
        Diagnostics.print("group \(group) on stream \(stream) now delivers entries after \(start)")
        return .success
    }
}
