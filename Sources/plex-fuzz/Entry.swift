import Foundation

// plex-fuzz TARGET: the fuzz targets of FuzzTargets.swift (frame, codec, control, handshake, json, http1).
//
// Built by scripts/fuzz.sh with libFuzzer and AddressSanitizer (`-sanitize=fuzzer,address -DPLEX_FUZZ`), it is
// a coverage-guided fuzzer: PLEX_FUZZ_TARGET names the target, the arguments are libFuzzer's. In an ordinary
// build it replays: `plex-fuzz TARGET [--seconds N] FILE|DIR…` runs the target over every file given (a corpus,
// a crash found earlier), then over random mutations of them for N seconds; the test command runs it so.

#if PLEX_FUZZ
    let target = ProcessInfo.processInfo.environment["PLEX_FUZZ_TARGET"] ?? ""
    let chosen =
        targets[target] ?? { _ in fatalError("set PLEX_FUZZ_TARGET to one of \(targets.keys.sorted()), not '\(target)'")
        }

    @_cdecl("LLVMFuzzerTestOneInput")
    func fuzzOne(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
        chosen(UnsafeRawBufferPointer(start: data, count: count))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// SwiftPM links an executable's entry point as `<product>_main`; libFuzzer's driver runs from here.
    @_cdecl("plex_fuzz_main")
    func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var argc = argc
        var argv = argv
        return LLVMFuzzerRunDriver(&argc, &argv, fuzzOne)
    }
#else
    @main
    enum Entry {
        static func main() { exit(Replay.main(CommandLine.arguments)) }
    }
#endif
