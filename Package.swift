// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "evt",
    products: [
        .executable(name: "evt", targets: ["evt"]),
    ],
    targets: [
        // Debian's C libraries, seen through module maps only. `pkgConfig` is left out for
        // hiredis: its .pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM warns about on every build.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        // OpenSSL 3 for rediss://: Debian's hiredis 0.14 has no TLS, so evt runs the TLS
        // session itself and hands hiredis the decrypted bytes to parse.
        .systemLibrary(name: "CTLS", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // libavro parses the Avro schemas of schema-registry topics.
        .systemLibrary(name: "CAvro", pkgConfig: "avro-c", providers: [.apt(["libavro-dev"])]),
        // libcurl for the schema registry's REST API (HTTP/1.1 keep-alive, TLS, basic auth).
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // JSON Schema (drafts 4, 6, 7) by valijson over rapidjson, behind a C API: Swift sees
        // only include/evt_jsonschema.h. valijson's headers are unpacked into vendor/ by
        // .ci/valijson-headers (Debian's package would pull Qt5 and Poco); rapidjson-dev is apt's.
        // Swift's clang 21 rejects two template bodies that are never instantiated here
        // (rapidjson 1.1's GenericStringRef::operator=, valijson 1.0's rapidjson iterators'
        // cross-type equality) and that GCC accepts: it parses template bodies only when used.
        .target(name: "CJSONSchema", exclude: ["vendor"],
                cxxSettings: [.headerSearchPath("vendor"), .unsafeFlags(["-fdelayed-template-parsing"])]),
        // Endpoint grammar, NDJSON codec, the backend adapter layer and one file per command.
        // Records are appended field by field to buffers owned by classes; dynamic exclusivity
        // checks on each of those accesses cost ~10% of a stream read (measured with perf).
        .target(name: "EvtCore", dependencies: ["CHiredis", "CRdKafka", "CTLS", "CAvro", "CCurl", "CJSONSchema"],
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        // Wiring only: parse, dispatch, map errors to stderr and an exit status.
        .executableTarget(name: "evt", dependencies: ["EvtCore"]),
        // Real servers for the tests: redis-server children, an in-process mock Kafka cluster
        // with fault injection, and a runner for the built `evt` binary.
        .target(name: "EvtTestSupport", dependencies: ["EvtCore", "CRdKafka"], path: "Tests/EvtTestSupport"),
        .testTarget(name: "EvtCoreTests", dependencies: ["EvtCore", "EvtTestSupport"]),
        .testTarget(name: "EvtEndToEndTests", dependencies: ["EvtTestSupport", "evt"], exclude: ["Fixtures"]),
    ]
)
