"""Read-side queries for the API's live views: the shared live snapshot, a day's track."""
