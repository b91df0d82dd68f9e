import Testing
@testable import EvtCore

@Suite("option parser")
struct ArgumentParserTests {
    let publish = CommandTable.publish

    func parse(_ words: [String], _ spec: CommandSpec = CommandTable.publish) throws -> ParsedArguments {
        try ArgumentParser.parse(words, for: spec)
    }

    @Test("options may come before or after operands, as --opt value or --opt=value")
    func positionsAndForms() throws {
        let parsed = try parse(["--key", "user.id", "topic:t", "in.ndjson", "--on-error=skip", "-H", "a=1", "-Hb=2"])
        #expect(parsed.operands == ["topic:t", "in.ndjson"])
        #expect(parsed.value("key") == "user.id")
        #expect(parsed.value("on-error") == "skip")
        #expect(parsed.values("header") == ["a=1", "b=2"])
    }

    @Test("-- ends options and - is stdin")
    func doubleDash() throws {
        let parsed = try parse(["topic:t", "-", "--", "--raw"])
        #expect(parsed.operands == ["topic:t", "-", "--raw"])
        #expect(!parsed.flag("raw"))
    }

    @Test("a word of the form -DIGITS is a value or operand, never an option")
    func negativeNumbers() throws {
        let parsed = try parse(["-n", "-3", "stream:s", "-42"], CommandTable.tail)
        #expect(parsed.value("lines") == "-3")
        #expect(parsed.operands == ["stream:s", "-42"])
    }

    @Test("clustered short flags and an attached value: -fn5")
    func clusters() throws {
        let parsed = try parse(["-fn5", "topic:t"], CommandTable.tail)
        #expect(parsed.flag("follow"))
        #expect(parsed.value("lines") == "5")
    }

    #if DEBUG
    @Test("a lookup of an option its command's spec does not declare stops a debug build")
    func undeclaredLookupStops() async {
        await #expect(processExitsWith: .failure) {
            _ = try? ArgumentParser.parse(["stream:s"], for: CommandTable.tail).value("group")
        }
    }
    #endif

    @Test("an unknown option is exit 2 with a suggestion")
    func unknownOptionSuggests() {
        #expect {
            try parse(["topic:t", "--kee", "x"])
        } throws: { error in
            guard let error = error as? EvtError else { return false }
            return error.status == .usage && error.message.contains("Did you mean --key?")
                && error.usage == publish.usageLine
        }
    }

    @Test("a missing value and a value given to a flag are usage errors")
    func missingAndExtraValues() {
        #expect(throws: EvtError.self) { try parse(["topic:t", "--key"]) }
        #expect(throws: EvtError.self) { try parse(["topic:t", "--raw=yes"]) }
    }

    @Test("a single-valued option given twice with different values is a conflict")
    func conflict() {
        #expect(throws: EvtError.self) { try parse(["topic:t", "--partition", "1", "--partition", "2"]) }
        #expect((try? parse(["topic:t", "--partition", "1", "--partition", "1"])) != nil)
    }

    @Test("help renders every option of the table")
    func helpFromTable() {
        for command in CommandTable.commands {
            let text = Help.text(for: command)
            for option in command.options {
                #expect(text.contains("--\(option.long)"), "evt help \(command.name) misses --\(option.long)")
            }
        }
    }
}
