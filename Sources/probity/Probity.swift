// The `probity` command: thin. It parses arguments, calls the libraries, prints, and sets the
// exit code (docs/DESIGN.md): 0 pass, 1 findings, 2 bad input, 3 internal error.

import ArgumentParser
import Foundation

/// Process exit codes (contract).
enum Exit {
    static let pass: Int32 = 0
    static let findings: Int32 = 1
    static let badInput: Int32 = 2
    static let internalError: Int32 = 3
    /// `generate` and `steer` stopped by Ctrl-C (SIGINT), after printing what they generated: the
    /// shell's code for a process ended by SIGINT (128 + 2).
    static let interrupted: Int32 = 130
}

@main
struct Probity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probity",
        abstract: "Run a language model on the CPU and watch and steer its features from the inside.",
        subcommands: [
            Version.self,
            Inspect.self,
            Tokenize.self,
            Detokenize.self,
            ChatTemplateCommand.self,
            Generate.self,
            Logits.self,
            Activations.self,
            Bench.self,
            Features.self,
            SAE.self,
            Steer.self,
            Rules.self,
            AuditCommand.self,
            ReportCommand.self,
            EvalCommand.self,
            DiffCommand.self,
            ServeCommand.self,
        ])

    /// Runs a command and maps every error to one message and a contract exit code.
    static func main() {
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }  // --help, --version
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(Exit.badInput)
        }
        do {
            var command = command
            try command.run()
        } catch let error as BadInput {
            FileHandle.standardError.write(Data("probity: error: \(commandLineMessage(error))\n".utf8))
            Foundation.exit(Exit.badInput)
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch let error as ValidationError {
            FileHandle.standardError.write(Data("probity: error: \(error.message)\n".utf8))
            Foundation.exit(Exit.badInput)
        } catch {
            // `--help` on a subcommand and `probity help X` arrive here, as a help command's error.
            if exitCode(for: error) == .success { exit(withError: error) }
            FileHandle.standardError.write(Data("probity: internal error: \(error)\n".utf8))
            Foundation.exit(Exit.internalError)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Probity's version.")
    static let current = "0.1.0"
    func run() { print("probity \(Self.current)") }
}
