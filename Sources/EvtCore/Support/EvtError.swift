/// The exit statuses of the contract (CONTRACT.md, "Exit status"); `sandbox --run` passes on
/// its command's status, whatever it is.
public struct ExitStatus: RawRepresentable, Equatable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let success = ExitStatus(rawValue: 0)
    /// Failure at run time: not delivered, server error, lost connection.
    public static let failure = ExitStatus(rawValue: 1)
    /// Unknown command or option, bad endpoint, unsupported feature.
    public static let usage = ExitStatus(rawValue: 2)
    /// Bad input data.
    public static let badInput = ExitStatus(rawValue: 3)
    public static let interrupted = ExitStatus(rawValue: 130)
    public static let terminated = ExitStatus(rawValue: 143)
}

/// The one error type every command throws. `message` says what went wrong and what to do;
/// it never contains a password (endpoints print themselves redacted).
public struct EvtError: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    public var message: String
    /// For usage errors: the usage line of the command that was being parsed.
    public var usage: String?

    public init(_ status: ExitStatus, _ message: String, usage: String? = nil) {
        self.status = status
        self.message = message
        self.usage = usage
    }

    public static func usage(_ message: String, usage: String? = nil) -> EvtError {
        EvtError(.usage, message, usage: usage)
    }
    public static func failure(_ message: String) -> EvtError { EvtError(.failure, message) }
    public static func badInput(_ message: String) -> EvtError { EvtError(.badInput, message) }

    public var description: String { message }
}
