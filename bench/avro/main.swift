// The Avro codec's loop for callgrind (bench/avro/ir): decodes or encodes one record of the
// rich test schema N times. Built out of the package against EvtCore's release objects.
@testable import EvtCore
#if canImport(Glibc)
import Glibc
#endif
private let richSchema = #"""
    {"type":"record","name":"Order","namespace":"com.acme","fields":[
     {"name":"id","type":"long"},
     {"name":"item","type":"string"},
     {"name":"qty","type":"int"},
     {"name":"price","type":"double"},
     {"name":"weight","type":"float"},
     {"name":"paid","type":"boolean"},
     {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},
     {"name":"customer","type":["null",{"type":"record","name":"Customer","fields":[
        {"name":"name","type":"string"},
        {"name":"email","type":["null","string"],"default":null},
        {"name":"address","type":{"type":"record","name":"Address","namespace":"com.acme.geo","fields":[
           {"name":"city","type":"string"},{"name":"zip","type":"string"}]}}]}],"default":null},
     {"name":"note","type":["null","string"],"default":null},
     {"name":"items","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
        {"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}},
     {"name":"tags","type":{"type":"map","values":"string"}},
     {"name":"hash","type":{"type":"fixed","name":"MD5","size":16}},
     {"name":"blob","type":"bytes"},
     {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
     {"name":"fee","type":{"type":"fixed","name":"Fee","size":8,"logicalType":"decimal","precision":12,"scale":3}},
     {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
     {"name":"day","type":{"type":"int","logicalType":"date"}},
     {"name":"ref","type":{"type":"string","logicalType":"uuid"}},
     {"name":"prev_status","type":["null","Status"],"default":null},
     {"name":"source","type":"string","default":"web"}
    ]}
    """#
private let richPayload = "0218626f6f6b202278220a20c3a90600000000008023400000204001020206416e6e0206614078084f736c6f083031353000020261020004026b0276027a0000f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0a0001ff225c0404d2fffffffffffffa24dcbccccaef66f0c4024831323334353637382d313233342d353637382d313233342d353637383132333435363738020006617070"
func hexBytes(_ text: String) -> [UInt8] {
    let u = Array(text.utf8); var out: [UInt8] = []
    var i = 0
    func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
    while i < u.count { out.append(v(u[i]) << 4 | v(u[i+1])); i += 2 }
    return out
}
let mode = CommandLine.arguments[1]
let records = Int(CommandLine.arguments[2])!
var text = richSchema
let avro = try! text.withUTF8 { try AvroSchema(json: UnsafeRawBufferPointer($0)) }
let payload = hexBytes(richPayload)
var out: [UInt8] = []
out.reserveCapacity(4096)
_ = payload.withUnsafeBytes { avro.appendJSON(of: $0, to: &out) }
let json = out
if mode == "decode" {
    payload.withUnsafeBytes { bytes in
        for _ in 0..<records { out.removeAll(keepingCapacity: true); if !avro.appendJSON(of: bytes, to: &out) { exit(1) } }
    }
} else {
    json.withUnsafeBytes { bytes in
        for _ in 0..<records { out.removeAll(keepingCapacity: true); try! avro.encode(json: bytes, appendingTo: &out) }
    }
    if out != payload { print("encode differs"); exit(1) }
}
print(out.count)
