extension DocumentTasks {
    /// The scaling guide's document pipeline, each stage on its own queue (bare names,
    /// and Celery's module-qualified `tasks.<name>`): what `celeris-worker` and
    /// `celeris-frontend` route by default.
    ///
    ///     let routes = try TaskRoutes.fromCommandLine(flags: ["report_*=reports"], file: nil, base: DocumentTasks.routes)
    public static let routes = TaskRoutes(rules: [
        ("fetch_documents_task", "fetch_queue"), ("*.fetch_documents_task", "fetch_queue"),
        ("extract_data_task", "extract_queue"), ("*.extract_data_task", "extract_queue"),
        ("compare_data_task", "compare_queue"), ("*.compare_data_task", "compare_queue"),
    ])
}
