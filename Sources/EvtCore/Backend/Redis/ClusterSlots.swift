/// Redis Cluster's key space (issue #12): which of the 16384 hash slots a key lives in, how a
/// key derived from another is named so that both share a slot, who serves each slot
/// (CLUSTER SLOTS) and where a MOVED or ASK answer points.

/// The slot of a key, by Redis' own rules (`keyHashSlot` in cluster.c): CRC16-XMODEM of the
/// key mod 16384 — or, when the key has a hash tag, of the tag alone.
public enum ClusterSlot {
    public static let count = 16384

    /// The slot of the raw key bytes. Per published event: one table lookup per byte.
    public static func of(_ key: UnsafeRawBufferPointer) -> Int {
        guard let tag = tagRange(key) else { return crc16(key) & (count - 1) }
        return crc16(UnsafeRawBufferPointer(rebasing: key[tag])) & (count - 1)
    }

    /// The slot of the key's UTF-8 bytes.
    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(UnsafeRawBufferPointer($0)) }
    }

    /// The hash tag Redis hashes instead of the whole key: the bytes between the first `{`
    /// and the first `}` after it, when there are any. nil when the key has no `{`, no `}`
    /// after its first `{`, or nothing between the two (`a{}b{c}` hashes whole).
    public static func hashTag(of key: String) -> String? {
        var key = key
        return key.withUTF8 { bytes -> String? in
            let raw = UnsafeRawBufferPointer(bytes)
            guard let tag = tagRange(raw) else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[tag]), as: UTF8.self)
        }
    }

    /// A name for a key derived from `key` (a checkpoint, a processing list) that lands in
    /// `key`'s slot: `derived` followed by `{T}`, where T is
    ///
    /// 1. `key`'s hash tag, when it has one: `"{user1}.orders"` gives `derived + "{user1}"`;
    /// 2. else `key` itself, when it is not empty and has no `}` — Redis then hashes it whole,
    ///    and `{key}` hashes the same bytes: `("evt:checkpoint:", "orders")` gives
    ///    `"evt:checkpoint:{orders}"`; a key with a lone `{` works too (`"a{b"` → `{a{b}`,
    ///    whose tag is `a{b`: the first `{` is ours, the first `}` after it is our closing one);
    /// 3. else (the empty key, or one with a `}` but no valid tag, such as `"a}b"` or
    ///    `"x{}y}"`, which no `{…}` can quote) a stand-in: the first string of `[0-9a-z]`, by
    ///    length and then alphabetically, whose slot is `key`'s slot (`""`, slot 0, gives
    ///    `derived + "{1bz}"`): at most four characters, which cover all 16384 slots (three
    ///    cover all but 85), found in well under a second even then.
    ///
    /// Returns nil only when `derived` itself has a `{`: the result's first `{` would then be
    /// `derived`'s, not ours, and nothing appended could fix the tag. Callers that build
    /// `derived` from user input (a checkpoint NAME) should report that as a usage error.
    /// `derived` may contain `}`: only braces after the first `{` matter.
    public static func keyWithTag(_ derived: String, sharing key: String) -> String? {
        if derived.utf8.contains(UInt8(ascii: "{")) { return nil }
        if let tag = hashTag(of: key) { return derived + "{" + tag + "}" }
        if !key.isEmpty && !key.utf8.contains(UInt8(ascii: "}")) { return derived + "{" + key + "}" }
        return derived + "{" + standIn(forSlot: of(key)) + "}"
    }

    /// The first string over `[0-9a-z]` (shortest first) that hashes to `slot`.
    static func standIn(forSlot slot: Int) -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        var length = 1
        while true {
            var digits = [Int](repeating: 0, count: length)
            var word = [UInt8](repeating: alphabet[0], count: length)
            while true {
                for index in 0..<length { word[index] = alphabet[digits[index]] }
                if word.withUnsafeBytes({ crc16($0) & (count - 1) }) == slot {
                    return String(decoding: word, as: UTF8.self)
                }
                // The next word of this length, odometer-style (the last character fastest).
                var position = length - 1
                while position >= 0 {
                    digits[position] += 1
                    if digits[position] < alphabet.count { break }
                    digits[position] = 0
                    position -= 1
                }
                if position < 0 { break }
            }
            length += 1
        }
    }

    /// The byte range of the hash tag inside `key`, or nil when Redis hashes it whole.
    @inline(__always)
    static func tagRange(_ key: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return nil }
        guard let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 else { return nil }
        return (open + 1)..<close
    }

    /// CRC16-XMODEM (polynomial 0x1021, initial value 0, no reflection), as Redis' crc16.c.
    static func crc16(_ bytes: UnsafeRawBufferPointer) -> Int {
        crcTable.withUnsafeBufferPointer { table in
            var crc: UInt16 = 0
            for byte in bytes {
                crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
            }
            return Int(crc)
        }
    }

    private static let crcTable: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

/// One node as CLUSTER SLOTS names it.
struct ClusterNode: Hashable, Sendable {
    var host: String
    var port: Int
    /// The node's 40-character id; empty if the server gave none.
    var id: String

    /// `host:port`, with an IPv6 host in brackets.
    var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which master serves each slot, from one CLUSTER SLOTS answer: a flat table of 16384 node
/// indices, so a lookup per published event costs one array read.
struct ClusterSlotMap: Sendable {
    /// Distinct masters, in the order of the first slot each serves.
    private(set) var masters: [ClusterNode] = []
    /// `masters` index per slot; `unassigned` for a slot no master serves.
    private var owners = [UInt16](repeating: ClusterSlotMap.unassigned, count: ClusterSlot.count)
    private static let unassigned = UInt16.max

    /// Slots no master serves (the cluster answers CLUSTERDOWN for them unless configured not to).
    private(set) var unassignedSlots = ClusterSlot.count

    /// `slotsReply`: CLUSTER SLOTS' answer, an array of `[start, end, [host, port, id, …],
    /// replica…]`. A node host that is empty or `?` means "the node you asked" (Redis 7's
    /// unknown endpoint): it becomes `seedHost` when given, and stays as it is otherwise.
    init(slotsReply: RedisValue, seedHost: String? = nil) throws {
        guard case .array(let ranges) = slotsReply else {
            if case .error(let text) = slotsReply {
                throw EvtError(.refused(code: "CLUSTER"), "CLUSTER SLOTS failed: \(text)")
            }
            throw ClusterSlotMap.malformed("the answer is not an array")
        }
        var parsed: [(start: Int, end: Int, node: ClusterNode)] = []
        for (position, range) in ranges.enumerated() {
            guard case .array(let fields) = range, fields.count >= 3,
                  case .integer(let start) = fields[0], case .integer(let end) = fields[1] else {
                throw ClusterSlotMap.malformed("range \(position + 1) is not [start, end, master, …]")
            }
            guard 0 <= start, start <= end, end < ClusterSlot.count else {
                throw ClusterSlotMap.malformed("range \(position + 1) is \(start)-\(end), outside 0-16383")
            }
            var node = try ClusterSlotMap.node(fields[2], range: position + 1)
            if node.host.isEmpty || node.host == "?", let seedHost { node.host = seedHost }
            parsed.append((start, end, node))
        }
        // By first slot, so that `masters` comes out in the order of the first slot each serves.
        parsed.sort { $0.start < $1.start }
        var index: [ClusterNode: UInt16] = [:]
        for range in parsed {
            let nodeIndex: UInt16
            if let known = index[range.node] {
                nodeIndex = known
            } else {
                nodeIndex = UInt16(masters.count)
                index[range.node] = nodeIndex
                masters.append(range.node)
            }
            for slot in range.start...range.end {
                guard owners[slot] == ClusterSlotMap.unassigned else {
                    throw ClusterSlotMap.malformed("slot \(slot) is served twice")
                }
                owners[slot] = nodeIndex
            }
            unassignedSlots -= range.end - range.start + 1
        }
    }

    /// The master serving `slot`; nil for a slot out of range or served by nobody.
    func master(forSlot slot: Int) -> ClusterNode? {
        guard 0 <= slot, slot < ClusterSlot.count else { return nil }
        let owner = owners[slot]
        return owner == ClusterSlotMap.unassigned ? nil : masters[Int(owner)]
    }

    /// The master serving `key`'s slot.
    func master(forKey key: String) -> ClusterNode? { master(forSlot: ClusterSlot.of(key)) }

    /// A MOVED answer: `slot` is served by `node` now (a master known by its address, or a new
    /// one, whose id is not known yet).
    mutating func assign(slot: Int, to node: RedisNode) {
        guard 0 <= slot, slot < ClusterSlot.count else { return }
        let index: Int
        if let known = masters.firstIndex(where: { $0.host == node.host && $0.port == node.port }) {
            index = known
        } else {
            index = masters.count
            masters.append(ClusterNode(host: node.host, port: node.port, id: ""))
        }
        if owners[slot] == ClusterSlotMap.unassigned { unassignedSlots -= 1 }
        owners[slot] = UInt16(index)
    }

    /// `[host, port, id, …]` (Redis 7 adds a map of hostnames after the id).
    private static func node(_ value: RedisValue, range: Int) throws -> ClusterNode {
        guard case .array(let fields) = value, fields.count >= 2, let host = fields[0].bytes,
              case .integer(let port) = fields[1] else {
            throw malformed("the master of range \(range) is not [host, port, id]")
        }
        guard 0 < port, port <= 65535 else { throw malformed("the master of range \(range) has port \(port)") }
        let id = fields.count > 2 ? fields[2].bytes.map { String(decoding: $0, as: UTF8.self) } ?? "" : ""
        return ClusterNode(host: String(decoding: host, as: UTF8.self), port: port, id: id)
    }

    private static func malformed(_ detail: String) -> EvtError {
        EvtError(.refused(code: "CLUSTER"), "the server's CLUSTER SLOTS answer makes no sense (\(detail)); is it a Redis Cluster node?")
    }
}

/// A cluster's "not here" answer: MOVED (the slot lives elsewhere now: update the map) or ASK
/// (the slot is being moved: send this one command to the other node, after ASKING).
enum ClusterRedirect: Equatable, Sendable {
    case moved(slot: Int, host: String, port: Int)
    case ask(slot: Int, host: String, port: Int)

    /// `MOVED 3999 127.0.0.1:6381`, `ASK 3999 ::1:6381` (the port is after the last colon; a
    /// bracketed `[::1]:6381` is read too), with or without RESP's leading `-`. The host may be
    /// empty (Redis 7's unknown endpoint: the node that answered). nil for any other error.
    init?(errorText: String) {
        var words = errorText.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 3 else { return nil }
        if words[0].hasPrefix("-") { words[0] = words[0].dropFirst() }
        guard let slot = Int(words[1]), 0 <= slot, slot < ClusterSlot.count,
              let colon = words[2].lastIndex(of: ":"),
              let port = Int(words[2][words[2].index(after: colon)...]), 0 < port, port <= 65535 else { return nil }
        var host = words[2][..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        switch words[0] {
        case "MOVED": self = .moved(slot: slot, host: String(host), port: port)
        case "ASK": self = .ask(slot: slot, host: String(host), port: port)
        default: return nil
        }
    }

    var slot: Int {
        switch self { case .moved(let slot, _, _), .ask(let slot, _, _): return slot }
    }
    var host: String {
        switch self { case .moved(_, let host, _), .ask(_, let host, _): return host }
    }
    var port: Int {
        switch self { case .moved(_, _, let port), .ask(_, _, let port): return port }
    }
    var isAsk: Bool {
        if case .ask = self { return true }
        return false
    }

    /// The node named, `server` (the one that answered) standing in for an empty host.
    func node(answeredBy server: RedisServerAddress) -> RedisNode {
        RedisNode(host: host.isEmpty ? server.host : host, port: port)
    }
}
