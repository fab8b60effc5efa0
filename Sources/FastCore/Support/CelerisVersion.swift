/// The package version reported in events, stats and `--version`.
///
///     print(CelerisVersion.current)
public enum CelerisVersion {
    /// This release's version, as the worker reports it (`celery inspect report`, `--version`).
    ///
    ///     print("celeris \(CelerisVersion.current)")
    public static let current = "0.2.0"
}
