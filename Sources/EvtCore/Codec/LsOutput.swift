/// `evt ls`'s output (CONTRACT.md, "Inventory and upkeep"): one JSON object per cluster,
/// topic, stream, list and channel, or tables for a terminal.
enum LsOutput {
    // MARK: NDJSON

    static func appendJSON(_ inventory: Inventory, clusterLine: Bool, to out: inout [UInt8]) {
        switch inventory {
        case .kafka(let kafka):
            if clusterLine { line(cluster(kafka), to: &out) }
            for topic in kafka.topics { line(self.topic(topic), to: &out) }
        case .redis(let redis):
            for stream in redis.streams { line(self.stream(stream), to: &out) }
            for list in redis.lists {
                var object = JSONObjectBuilder()
                object.string("list", list.name)
                object.number("length", list.length)
                line(object, to: &out)
            }
            for channel in redis.channels {
                var object = JSONObjectBuilder()
                object.string("channel", channel.name)
                object.number("subscribers", channel.subscribers)
                line(object, to: &out)
            }
        }
    }

    private static func line(_ object: JSONObjectBuilder, to out: inout [UInt8]) {
        out += object.closed
        out.append(UInt8(ascii: "\n"))
    }

    private static func numbers(_ values: [Int32]) -> String {
        "[" + values.map(String.init).joined(separator: ",") + "]"
    }

    static func cluster(_ kafka: KafkaInventory) -> JSONObjectBuilder {
        var object = JSONObjectBuilder()
        object.string("kafka", kafka.bootstrap)
        if let id = kafka.clusterID { object.string("cluster_id", id) } else { object.raw("cluster_id", "null") }
        object.number("controller", kafka.controller.map(Int64.init))
        object.array("brokers", kafka.brokers.map { broker in
            var item = JSONObjectBuilder()
            item.number("id", Int64(broker.id))
            item.string("host", broker.host)
            item.number("port", Int64(broker.port))
            return item
        })
        return object
    }

    static func topic(_ topic: KafkaInventory.Topic) -> JSONObjectBuilder {
        var object = JSONObjectBuilder()
        object.string("topic", topic.name)
        object.array("partitions", topic.partitions.map { partition in
            var item = JSONObjectBuilder()
            item.number("partition", Int64(partition.partition))
            item.number("leader", Int64(partition.leader))
            item.raw("replicas", numbers(partition.replicas))
            item.raw("isr", numbers(partition.isr))
            item.number("log_start", partition.logStart)
            item.number("log_end", partition.logEnd)
            return item
        })
        object.number("records", topic.records)
        return object
    }

    static func stream(_ stream: RedisInventory.Stream) -> JSONObjectBuilder {
        var object = JSONObjectBuilder()
        object.string("stream", stream.name)
        object.number("length", stream.length)
        if let first = stream.firstID { object.string("first_id", first) } else { object.raw("first_id", "null") }
        if let last = stream.lastID { object.string("last_id", last) } else { object.raw("last_id", "null") }
        object.array("groups", stream.groups.map { group in
            var item = JSONObjectBuilder()
            item.string("group", group.group)
            item.number("consumers", group.consumers)
            item.number("pending", group.pending)
            item.string("last_delivered_id", group.lastDeliveredID)
            item.number("lag", group.lag)
            if !group.lagExact { item.raw("lag_exact", "false") }
            return item
        })
        return object
    }

    // MARK: Tables, for a terminal

    static func appendTables(_ inventories: [Inventory], clusterLine: [Bool], to out: inout [UInt8]) {
        var sections: [[[String]]] = []
        for (index, inventory) in inventories.enumerated() {
            switch inventory {
            case .kafka(let kafka):
                if clusterLine[index] {
                    var rows = [["KAFKA", "CLUSTER-ID", "CONTROLLER", "BROKERS"]]
                    rows.append([kafka.bootstrap, kafka.clusterID ?? "-", kafka.controller.map { String($0) } ?? "-",
                                 kafka.brokers.map { "\($0.id)=\($0.host):\($0.port)" }.joined(separator: " ")])
                    sections.append(rows)
                }
                if !kafka.topics.isEmpty {
                    var rows = [["TOPIC", "PARTITIONS", "REPLICAS", "RECORDS"]]
                    for topic in kafka.topics {
                        rows.append([topic.name, String(topic.partitions.count),
                                     String(topic.partitions.map(\.replicas.count).max() ?? 0), String(topic.records)])
                    }
                    sections.append(rows)
                }
            case .redis(let redis):
                if !redis.streams.isEmpty {
                    var rows = [["STREAM", "LENGTH", "FIRST-ID", "LAST-ID", "GROUP", "CONSUMERS", "PENDING", "LAG"]]
                    for stream in redis.streams {
                        let facts = [stream.name, String(stream.length), stream.firstID ?? "-", stream.lastID ?? "-"]
                        if stream.groups.isEmpty { rows.append(facts + ["-", "", "", ""]) }
                        for (at, group) in stream.groups.enumerated() {
                            rows.append((at == 0 ? facts : [stream.name, "", "", ""])
                                        + [group.group, String(group.consumers), String(group.pending),
                                           (group.lagExact ? "" : ">") + String(group.lag)])
                        }
                    }
                    sections.append(rows)
                }
                if !redis.lists.isEmpty {
                    sections.append([["LIST", "LENGTH"]] + redis.lists.map { [$0.name, String($0.length)] })
                }
                if !redis.channels.isEmpty {
                    sections.append([["CHANNEL", "SUBSCRIBERS"]] + redis.channels.map { [$0.name, String($0.subscribers)] })
                }
            }
        }
        for (index, rows) in sections.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "\n")) }
            appendTable(rows, to: &out)
        }
    }

    /// Columns padded to their widest cell: names and ids to the left, counts to the right.
    private static func appendTable(_ rows: [[String]], to out: inout [UInt8]) {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        let numeric = (0..<rows[0].count).map { column in
            rows.dropFirst().allSatisfy { row in row[column].isEmpty || row[column].allSatisfy { $0.isNumber || $0 == ">" } }
        }
        for row in rows {
            var line = ""
            for (column, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                let last = column == row.count - 1
                line += numeric[column] ? padding + cell : cell + (last ? "" : padding)
                if !last { line += "  " }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += Array(line.utf8)
            out.append(UInt8(ascii: "\n"))
        }
    }
}
