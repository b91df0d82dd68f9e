import EvtCore

#if canImport(Glibc)
import Glibc
#endif

// Wiring only: everything, including the option tables, lives in EvtCore.
var environment: [String: String] = [:]
var cursor = environ
while let entry = cursor.pointee {
    let text = String(cString: entry)
    if let equals = text.firstIndex(of: "=") {
        environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
    }
    cursor += 1
}
exit(EvtMain.run(CommandLine.arguments, environment: environment))
