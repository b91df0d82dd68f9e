import Testing
@testable import EvtCore

@Suite("Redis Cluster slots, slot maps and redirects")
struct ClusterSlotTests {
    @Test("CRC16 slots match the values Redis documents and computes")
    func knownSlots() {
        #expect(ClusterSlot.count == 16384)
        #expect(ClusterSlot.of("foo") == 12182)
        #expect(ClusterSlot.of("bar") == 5061)
        #expect(ClusterSlot.of("") == 0)
        // The XMODEM check value: CRC16("123456789") = 0x31C3.
        #expect("123456789".utf8CString.withUnsafeBytes {
            ClusterSlot.crc16(UnsafeRawBufferPointer(rebasing: $0.dropLast()))
        } == 0x31C3)
        #expect(ClusterSlot.of("123456789") == 0x31C3 & 0x3FFF)
    }

    @Test("a hash tag is the text between the first { and the first } after it, if not empty")
    func hashTags() {
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("{user1000}.followers"))
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("user1000"))
        #expect(ClusterSlot.hashTag(of: "{user1000}.following") == "user1000")
        // An empty first tag: the whole key is hashed, later braces do not count.
        #expect(ClusterSlot.hashTag(of: "foo{}{bar}") == nil)
        #expect(ClusterSlot.of("foo{}{bar}") == crc("foo{}{bar}"))
        #expect(ClusterSlot.of("foo{}{bar}") != ClusterSlot.of("bar"))
        // The tag starts after the first {, so it may contain a {.
        #expect(ClusterSlot.hashTag(of: "foo{{bar}}zap") == "{bar")
        #expect(ClusterSlot.of("foo{{bar}}zap") == ClusterSlot.of("{bar"))
        // Only the first tag counts.
        #expect(ClusterSlot.hashTag(of: "foo{bar}{zap}") == "bar")
        #expect(ClusterSlot.of("foo{bar}{zap}") == ClusterSlot.of("bar"))
        // No tag: no {, no } after it, or a } only before the {.
        for key in ["plain", "a{b", "a}b", "}a{b", "{", "}", "{}"] {
            #expect(ClusterSlot.hashTag(of: key) == nil, "\(key)")
            #expect(ClusterSlot.of(key) == crc(key), "\(key)")
        }
        #expect(ClusterSlot.hashTag(of: "}a{b}") == "b")
        // UTF-8 keys hash their bytes; the tag keeps its characters.
        #expect(ClusterSlot.hashTag(of: "commandes:{café}") == "café")
        #expect(ClusterSlot.of("commandes:{café}") == ClusterSlot.of("café"))
    }

    @Test("the raw-bytes and String forms agree, binary bytes included")
    func rawBytes() {
        let bytes: [UInt8] = [0x00, 0xFF, UInt8(ascii: "{"), 0x80, 0x01, UInt8(ascii: "}"), 0x0A]
        let whole = bytes.withUnsafeBytes { ClusterSlot.of($0) }
        let tag = [UInt8](bytes[3...4]).withUnsafeBytes { ClusterSlot.of($0) }
        #expect(whole == tag)
        #expect(whole == [UInt8](bytes[3...4]).withUnsafeBytes { ClusterSlot.crc16($0) } & 0x3FFF)
        for key in ["orders", "{a}b", "x{}y", ""] {
            #expect(Array(key.utf8).withUnsafeBytes { ClusterSlot.of($0) } == ClusterSlot.of(key))
        }
    }

    @Test("a derived key takes the key's tag, or the key as its tag, and lands in its slot")
    func derivedKeys() throws {
        #expect(ClusterSlot.keyWithTag("evt:checkpoint:", sharing: "orders") == "evt:checkpoint:{orders}")
        #expect(ClusterSlot.keyWithTag("evt:copy:jobs", sharing: "jobs") == "evt:copy:jobs{jobs}")
        #expect(ClusterSlot.keyWithTag("evt:checkpoint:", sharing: "{user1}.orders") == "evt:checkpoint:{user1}")
        #expect(ClusterSlot.keyWithTag("evt:checkpoint:", sharing: "foo{{bar}}zap") == "evt:checkpoint:{{bar}")
        #expect(ClusterSlot.keyWithTag("evt:checkpoint:", sharing: "a{b") == "evt:checkpoint:{a{b}")
        // A } in the derived part is harmless: only braces after the first { count.
        #expect(ClusterSlot.keyWithTag("evt:}:", sharing: "orders") == "evt:}:{orders}")
        // Keys whose slot no {…} of their own text can give get a short stand-in tag.
        let awkward = ["", "a}b", "x{}y}", "foo{}{bar}", "}", "{}", "}{"]
        for key in awkward {
            let derived = try #require(ClusterSlot.keyWithTag("evt:checkpoint:", sharing: key), "\(key)")
            #expect(derived.hasPrefix("evt:checkpoint:{") && derived.hasSuffix("}"), "\(derived)")
            #expect(ClusterSlot.hashTag(of: derived)!.count <= 4, "\(derived)")
        }
        #expect(ClusterSlot.keyWithTag("evt:checkpoint:", sharing: "") == "evt:checkpoint:{1bz}")
        // Every case, awkward or not, shares the key's slot and has a tag.
        let keys = awkward + ["orders", "{user1}.orders", "foo{{bar}}zap", "a{b", "foo{bar}{zap}", "café", "a b\tc"]
        for key in keys {
            let derived = try #require(ClusterSlot.keyWithTag("evt:checkpoint:", sharing: key), "\(key)")
            #expect(ClusterSlot.of(derived) == ClusterSlot.of(key), "\(key) → \(derived)")
            #expect(ClusterSlot.hashTag(of: derived) != nil, "\(derived)")
        }
        // A derived name with a { of its own cannot carry the key's tag first: reported as nil.
        #expect(ClusterSlot.keyWithTag("evt:checkpoint:a{b", sharing: "orders") == nil)
        #expect(ClusterSlot.keyWithTag("evt:{x}:", sharing: "{x}") == nil)
    }

    @Test("four characters of [0-9a-z] give a stand-in for the slowest slots too")
    func standInsForEverySlot() {
        // Slots no 1–3 character word reaches are the slowest to find; check a few of them.
        var reached = [Bool](repeating: false, count: ClusterSlot.count)
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        for a in alphabet {
            reached[[a].withUnsafeBytes { ClusterSlot.crc16($0) } & 0x3FFF] = true
            for b in alphabet {
                reached[[a, b].withUnsafeBytes { ClusterSlot.crc16($0) } & 0x3FFF] = true
                for c in alphabet { reached[[a, b, c].withUnsafeBytes { ClusterSlot.crc16($0) } & 0x3FFF] = true }
            }
        }
        let hardest = reached.indices.filter { !reached[$0] }
        #expect(hardest.count == 85)
        for slot in hardest.prefix(3) + hardest.suffix(1) {
            let word = ClusterSlot.standIn(forSlot: slot)
            #expect(word.count == 4 && ClusterSlot.of(word) == slot)
        }
        #expect(ClusterSlot.standIn(forSlot: ClusterSlot.of("7")) == "7")
    }

    @Test("a CLUSTER SLOTS answer gives each slot's master and the masters in slot order")
    func slotMap() throws {
        // Ranges out of order, one master serving two ranges, Redis 7's trailing metadata map,
        // and the node that answered shown with an empty host.
        let reply = RedisValue.array([
            range(10923, 16383, master: node("127.0.0.1", 7002, "c"), replicas: [node("127.0.0.1", 7005, "f")]),
            range(0, 5000, master: node("", 7000, "a", metadata: true)),
            range(5461, 10922, master: node("127.0.0.1", 7001, "b")),
            range(5001, 5460, master: node("", 7000, "a", metadata: true)),
        ])
        let map = try ClusterSlotMap(slotsReply: reply, seedHost: "10.0.0.5")
        #expect(map.masters == [ClusterNode(host: "10.0.0.5", port: 7000, id: "a"),
                                ClusterNode(host: "127.0.0.1", port: 7001, id: "b"),
                                ClusterNode(host: "127.0.0.1", port: 7002, id: "c")])
        #expect(map.master(forSlot: 0)?.port == 7000)
        #expect(map.master(forSlot: 5460)?.port == 7000)
        #expect(map.master(forSlot: 5461)?.port == 7001)
        #expect(map.master(forSlot: 16383)?.port == 7002)
        #expect(map.master(forSlot: 16384) == nil && map.master(forSlot: -1) == nil)
        #expect(map.master(forKey: "foo")?.port == 7002)   // slot 12182
        #expect(map.unassignedSlots == 0)
        #expect(map.masters[0].address == "10.0.0.5:7000")

        // Without a seed host the empty host stays, for the caller to fill in; "?" too.
        let unknown = try ClusterSlotMap(slotsReply: .array([range(0, 99, master: node("?", 7000, "a"))]))
        #expect(unknown.master(forSlot: 0)?.host == "?")
        #expect(unknown.master(forSlot: 100) == nil && unknown.unassignedSlots == 16284)
        #expect(ClusterNode(host: "::1", port: 7000, id: "").address == "[::1]:7000")
        #expect(try ClusterSlotMap(slotsReply: .array([])).masters.isEmpty)
    }

    @Test("a malformed CLUSTER SLOTS answer is refused with code CLUSTER and a reason")
    func malformedSlotMaps() {
        let bad: [(RedisValue, String)] = [
            (.error("ERR This instance has cluster support disabled"), "cluster support disabled"),
            (.integer(3), "not an array"),
            (.array([.integer(1)]), "range 1"),
            (.array([.array([.integer(0), .integer(10)])]), "range 1"),
            (.array([range(10, 5, master: node("h", 1, "a"))]), "10-5"),
            (.array([range(0, 16384, master: node("h", 1, "a"))]), "0-16384"),
            (.array([.array([.integer(0), .integer(1), .string(Array("h".utf8))])]), "master of range 1"),
            (.array([range(0, 1, master: node("h", 0, "a"))]), "port 0"),
            (.array([range(0, 100, master: node("h", 1, "a")), range(100, 200, master: node("h", 2, "b"))]),
             "slot 100 is served twice"),
        ]
        for (reply, reason) in bad {
            do {
                _ = try ClusterSlotMap(slotsReply: reply)
                Issue.record("accepted \(reply)")
            } catch let error as EvtError {
                #expect(error.cause == .refused(code: "CLUSTER"))
                #expect(error.message.contains(reason), "\(error.message)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("MOVED and ASK answers give the slot and the node, splitting at the last colon")
    func redirects() {
        #expect(ClusterRedirect(errorText: "MOVED 3999 127.0.0.1:6381") == .moved(slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(ClusterRedirect(errorText: "ASK 3999 127.0.0.1:6381") == .ask(slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(ClusterRedirect(errorText: "-MOVED 0 redis-7.local:7000") == .moved(slot: 0, host: "redis-7.local", port: 7000))
        #expect(ClusterRedirect(errorText: "ASK 16383 ::1:6381") == .ask(slot: 16383, host: "::1", port: 6381))
        #expect(ClusterRedirect(errorText: "MOVED 12 [fe80::1]:6381") == .moved(slot: 12, host: "fe80::1", port: 6381))
        #expect(ClusterRedirect(errorText: "MOVED 12 :6381") == .moved(slot: 12, host: "", port: 6381))
        let redirect = ClusterRedirect(errorText: "ASK 7 h:1")
        #expect(redirect?.slot == 7 && redirect?.host == "h" && redirect?.port == 1)
        for text in ["MOVED 16384 h:1", "MOVED -1 h:1", "MOVED 1 h", "MOVED 1 h:", "MOVED 1 h:0", "MOVED 1 h:65536",
                     "MOVED x h:1", "MOVED 1", "MOVED 1 h:1 extra", "TRYAGAIN Multiple keys request during rehashing of slot",
                     "CLUSTERDOWN The cluster is down", "ERR unknown command", "moved 1 h:1", ""] {
            #expect(ClusterRedirect(errorText: text) == nil, "\(text)")
        }
    }

    @Test("commands to send again after a redirect: all of a slot's go where its newest answer pointed, others each where its own did")
    func redirectedCommandsGoWhereTheirSlotsNewestAnswerPointed() throws {
        func command(_ words: [String]) -> ArraySlice<UInt8> {
            var buffer = RespCommandBuffer()
            buffer.command(words)
            return buffer.bytes[...]
        }
        let seed = RedisServerAddress(host: "127.0.0.1", port: 7000)
        let key = "{user1}.orders-with-a-longer-name"
        let slot = ClusterSlot.of("user1")
        #expect(RedirectedCommands.slotOfKey(command(["XADD", key, "*", "n", "1"])) == slot)
        #expect(RedirectedCommands.slotOfKey(command(["LPUSH", "jobs", "x"])) == ClusterSlot.of("jobs"))
        #expect(RedirectedCommands.slotOfKey(command(["PUBLISH", "", "x"])) == 0)

        var redirected = RedirectedCommands()
        // The slot moved from 7001 to 7002 while its commands were answered; "jobs" did not.
        redirected.add(line: 1, command: command(["XADD", key, "*", "n", "1"]), to: try #require(ClusterRedirect(errorText: "MOVED \(slot) 127.0.0.1:7001")), from: seed)
        redirected.add(line: 2, command: command(["LPUSH", "jobs", "x"]), to: try #require(ClusterRedirect(errorText: "MOVED \(ClusterSlot.of("jobs")) 127.0.0.1:7001")), from: seed)
        redirected.add(line: 3, command: command(["XADD", key, "*", "n", "3"]), to: try #require(ClusterRedirect(errorText: "ASK \(slot) 127.0.0.1:7002")), from: seed)
        let destinations = (0..<redirected.count).map { redirected.destination(at: $0) }
        #expect(destinations.map(\.node.port) == [7002, 7001, 7002])
        #expect(destinations.map(\.asking) == [true, false, true])
        #expect(redirected.lines == [1, 2, 3])
        #expect(Array(redirected.command(at: 2)) == Array(command(["XADD", key, "*", "n", "3"])))
    }

    // MARK: - helpers

    /// The whole key's CRC16, mod 16384: what Redis hashes when there is no tag.
    private func crc(_ key: String) -> Int {
        Array(key.utf8).withUnsafeBytes { ClusterSlot.crc16($0) } & 0x3FFF
    }

    private func node(_ host: String, _ port: Int, _ id: String, metadata: Bool = false) -> RedisValue {
        var fields: [RedisValue] = [.string(Array(host.utf8)), .integer(port), .string(Array(id.utf8))]
        if metadata { fields.append(.array([.string(Array("hostname".utf8)), .string(Array("node-a".utf8))])) }
        return .array(fields)
    }

    private func range(_ start: Int, _ end: Int, master: RedisValue, replicas: [RedisValue] = []) -> RedisValue {
        .array([.integer(start), .integer(end), master] + replicas)
    }
}
