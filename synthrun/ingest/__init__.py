"""Turn a folder of documents into LanceDB chunk tables: readers, chunking, the table writer."""
