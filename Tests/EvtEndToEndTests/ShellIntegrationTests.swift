import Foundation
import Testing
import EvtCore
import EvtTestSupport

/// The completions and man pages are written by hand; these tests hold them to the option
/// tables, so an option added to a table and forgotten elsewhere fails here. The
/// completions are checked by loading them into real bash, zsh and fish.
@Suite("completions and man pages agree with the option tables")
struct ShellIntegrationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let completions = root.appendingPathComponent("completions").path
    static let commands = CommandTable.commands.filter { $0.name != "help" }

    /// Every spelling of a command's options: `--long` and `-s`.
    static func optionWords(_ command: CommandSpec) -> Set<String> {
        Set(command.options.flatMap { option in ["--\(option.long)"] + (option.short.map { ["-\($0)"] } ?? []) })
    }

    enum Shell: String, CaseIterable { case bash, zsh, fish }

    /// What `shell` offers when TAB is pressed at the end of `line`.
    static func offered(_ shell: Shell, _ line: String) throws -> Set<String> {
        let result: ProcessResult
        switch shell {
        case .bash:
            // Drive the completion function as bash would: COMP_WORDS split on blanks.
            var words = line.split(separator: " ").map(String.init)
            if line.hasSuffix(" ") { words.append("") }
            let array = words.map { "'\($0)'" }.joined(separator: " ")
            let script = """
                [ -f /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
                . '\(completions)/evt.bash'
                COMP_WORDS=(\(array)); COMP_CWORD=\(words.count - 1); COMP_LINE='\(line)'; COMP_POINT=${#COMP_LINE}
                _evt evt "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            result = try runProcess(["bash", "--norc", "--noprofile", "-c", script], timeout: 30)
        case .zsh:
            let capture = root.appendingPathComponent("Tests/EvtEndToEndTests/Fixtures/zsh-complete.zsh").path
            result = try runProcess(["zsh", "-f", capture, completions, line], timeout: 30)
        case .fish:
            let script = "source '\(completions)/evt.fish'; complete -C '\(line)'"
            result = try runProcess(["fish", "--no-config", "-c", script], timeout: 30)
        }
        #expect(result.status == 0, "\(shell) failed on '\(line)': \(result.stderr)")
        return Set(result.stdoutText.split(separator: "\n").map {
            String($0.split(separator: "\t", maxSplits: 1).first ?? "")   // fish: candidate<TAB>description
        }.filter { !$0.isEmpty })
    }

    @Test("each shell offers exactly the commands", arguments: Shell.allCases)
    func commandNames(shell: Shell) throws {
        let expected = Set(CommandTable.commands.map(\.name))
        #expect(try Self.offered(shell, "evt ").subtracting(["--help", "--version"]) == expected)
        #expect(try Self.offered(shell, "evt --") == ["--help", "--version"])
        #expect(try Self.offered(shell, "evt pub") == ["publish"])
    }

    @Test("each shell offers exactly the options of each command's table", arguments: Shell.allCases)
    func optionsMatchTables(shell: Shell) throws {
        for command in Self.commands {
            let offered = try Self.offered(shell, "evt \(command.name) -")
            #expect(offered == Self.optionWords(command), "\(shell), evt \(command.name)")
        }
    }

    @Test("fish knows every option that takes a value, so that the value is not counted as an operand")
    func fishValueOptions() throws {
        let script = try String(contentsOf: Self.root.appendingPathComponent("completions/evt.fish"), encoding: .utf8)
        // The `case` of __evt_operands that skips an option's value, up to `set skip 1`.
        guard let start = script.range(of: "case --key "), let end = script.range(of: "set skip 1", range: start.upperBound..<script.endIndex) else {
            Issue.record("completions/evt.fish has no list of options that take a value")
            return
        }
        let separators: Set<Character> = [" ", "\\", "\n"]
        let words = script[start.lowerBound..<end.lowerBound].split(whereSeparator: { separators.contains($0) })
        let listed: Set<String> = Set(words.map { String($0) }.filter { $0.hasPrefix("-") })
        for command in Self.commands {
            for option in command.options where option.takesValue {
                #expect(listed.contains("--\(option.long)"), "evt.fish: evt \(command.name) --\(option.long) takes a value")
                if let short = option.short { #expect(listed.contains("-\(short)"), "evt.fish: evt \(command.name) -\(short) takes a value") }
            }
        }
    }

    @Test("each shell offers endpoint prefixes for a target or source, and --on-error's choices",
          arguments: Shell.allCases)
    func endpointsAndChoices(shell: Shell) throws {
        let prefixes: Set<String> = ["stream:", "list:", "channel:", "topic:", "redis://", "rediss://", "kafka://"]
        for command in ["publish", "tail"] {
            #expect(try Self.offered(shell, "evt \(command) ") == prefixes, "\(shell), evt \(command)")
        }
        #expect(try Self.offered(shell, "evt publish --on-error ") == ["fail", "skip"])
        let choices = CommandTable.publish.option(named: "on-error")?.completion
        #expect(choices == .choices(["fail", "skip"]))
    }

    static func manPage(_ name: String) throws -> String {
        let text = try String(contentsOf: root.appendingPathComponent("man/\(name).1"), encoding: .utf8)
        // As a reader sees it: roff's \- is a hyphen, font changes are not text.
        return text.replacingOccurrences(of: "\\-", with: "-")
            .replacing(/\\f[BIRP]/, with: "")
    }

    @Test("every command has a man page naming each of its options; evt(1) names every command")
    func manPagesNameEveryOption() throws {
        let overview = try Self.manPage("evt")
        for command in Self.commands {
            #expect(overview.contains("evt-\(command.name)"), "evt.1 does not mention evt-\(command.name)(1)")
            let page = try Self.manPage("evt-\(command.name)")
            for word in Self.optionWords(command) {
                let pattern = word.hasPrefix("--") ? word : "\(word),"
                #expect(page.contains(pattern), "man/evt-\(command.name).1 does not document \(word)")
            }
        }
    }

    @Test("the man pages pass mandoc -Tlint")
    func manPagesLint() throws {
        let pages = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("man").path)
            .filter { $0.hasSuffix(".1") }.map { Self.root.appendingPathComponent("man/\($0)").path }
        #expect(pages.count == Self.commands.count + 1)
        let lint = try runProcess(["mandoc", "-Tlint", "-W", "warning"] + pages, timeout: 30)
        #expect(lint.status == 0 && lint.stdoutText.isEmpty && lint.stderr.isEmpty,
                "\(lint.stdoutText)\(lint.stderr)")
    }
}
