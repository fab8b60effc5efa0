// `import Celeris` gives the whole engine: tasks, registry, messages, canvas, results.
@_exported import FastCore
