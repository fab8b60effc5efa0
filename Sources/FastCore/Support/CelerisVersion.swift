/// The package version reported in events, stats and `--version`.
///
///     print(CelerisVersion.current)
public enum CelerisVersion {
    public static let current = "0.2.0"
}
