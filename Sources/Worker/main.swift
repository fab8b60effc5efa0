import Celeris

// `celeris-worker`: the built-in tasks (the tutorial's `create_task`, `add`, `noop`, `tsum`)
// and the document pipeline's, routed to their queues.
CelerisWorker.main(tasks: [BuiltinTasks.all, DocumentTasks.all], routes: DocumentTasks.routes)
