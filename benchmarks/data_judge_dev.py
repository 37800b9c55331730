"""Build tests/data/judge/qa_dev.jsonl: the labelled QA dev set the judge is measured on.

Passages are sections of the docs the project ships (recipes/data/demo_docs) and of Debian's h5py
documentation (python-h5py-doc, reST sources). Good pairs, contradicted answers and unanswerable
questions (SQuAD 2.0 adversarial style: the passage looks like it answers, it does not) are written
by hand below; the other bad kinds are derived from that hand-written material:

- statement: a declarative sentence in the question field (the good answer, or "This section explains ...")
- vague: a meta question that names nothing ("What is this?") with a correct in-passage answer
- other_passage: a good question with the good answer of a passage on another subject
- echo: an answer that repeats the question
- truncated: a good answer cut off mid-sentence
- off_topic: hand-written pairs about other subjects, attached to an HDF5 passage

Run: ``python benchmarks/data_judge_dev.py`` (needs python-h5py-doc; the JSONL is committed).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recipes" / "data" / "demo_docs"
DEBIAN = Path("/usr/share/doc/python-h5py-doc/html/_sources")
OUT = ROOT / "tests" / "data" / "judge" / "qa_dev.jsonl"
_UNDERLINE = re.compile(r"([=\-~^#*])\1{3,}")


def sections(path: Path) -> dict[str, str]:
    """Heading -> body of each section of a Markdown or reST file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: dict[str, str] = {}
    title, buf = None, []
    for i, line in enumerate(lines):
        md = re.match(r"#{1,6}\s+(.*)", line)
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        rst = line.strip() and _UNDERLINE.fullmatch(nxt) and len(nxt) >= len(line.strip()) - 1
        if (md and path.suffix == ".md") or rst:
            if title is not None:
                out[title] = "\n".join(buf).strip()
            title, buf = (md.group(1) if md and path.suffix == ".md" else line.strip()), []
            continue
        if _UNDERLINE.fullmatch(line.strip()):
            continue
        buf.append(line)
    if title is not None:
        out[title] = "\n".join(buf).strip()
    return out


def passage(path: Path, heading: str) -> str:
    body = sections(path)[heading]
    body = re.sub(r"\n\.\. _[\w-]+:\s*$", "", body).strip()
    return f"{heading}\n\n{body}"


D = DEMO
H = DEBIAN
# (file, heading, [good (q, a)], contradicted (q, a), unanswerable (q, plausible in-passage a))
PASSAGES: list[tuple[Path, str, list[tuple[str, str]], tuple[str, str], tuple[str, str]]] = [
    (D / "01_files_and_groups.md", "Files and groups",
     [("What are the inner nodes and the leaves of the tree inside an HDF5 file?",
       "The inner nodes are groups and the leaves are datasets."),
      ("What is the root group of every HDF5 file called?", "Every file starts with a root group called `/`.")],
     ("What is the root group of every HDF5 file called?", "Every file starts with a root group called `root`."),
     ("What are the inner nodes of a dataset called?", "The inner nodes are called groups.")),
    (D / "01_files_and_groups.md", "Opening a file",
     [("Which file mode is the default in h5py since version 3.0?",
       'Mode "r", which opens an existing file read-only, is the default since h5py 3.0.'),
      ('What does mode "x" do when a file is opened with h5py.File?',
       'Mode "x" creates a new file but fails if a file with that name already exists.')],
     ("Which file mode is the default in h5py since version 3.0?",
      'Mode "a", which opens a file for reading and writing, is the default since h5py 3.0.'),
     ("Which file mode was the default before h5py 3.0?", 'Mode "r", which opens an existing file read-only.')),
    (D / "01_files_and_groups.md", "Working with groups",
     [("How can you list the names directly inside an h5py group?",
       "Call `group.keys()`, which lists the names directly inside the group."),
      ("What does require_group do when the group already exists?",
       "It returns the existing group instead of failing.")],
     ("What does visititems(func) do?",
      "h5py calls `func(name, obj)` only for the datasets directly inside the starting group, skipping subgroups."),
     ("In what order does visititems visit the groups and datasets of a file?",
      "h5py calls `func(name, obj)` for every group and dataset below the starting group.")),
    (D / "02_datasets.md", "Datasets",
     [("How are the shape and type of a dataset determined when data is passed to create_dataset?",
       "They are taken from the given array unless the shape and type are passed explicitly."),
      ("What kind of object is an h5py dataset?",
       "A dataset is an n-dimensional array with one element type and a fixed number of dimensions.")],
     ("How are the shape and type of a dataset determined when data is passed to create_dataset?",
      "They are always taken from the shape and dtype arguments; the array's own shape is ignored."),
     ("Which element type does create_dataset use when neither data nor dtype is given?",
      'It uses the dtype "f4", as in the temperature example.')),
    (D / "02_datasets.md", "Reading and writing",
     [("How do you read the whole of a scalar dataset in h5py?",
       "Use `dset[()]`, which reads the whole dataset and also works for scalar datasets without dimensions."),
      ("Why can h5py work with datasets far larger than memory?",
       "Slicing reads only the selected part from disk, so the whole dataset never has to be loaded.")],
     ("What does `dset[:, 5]` read?", "`dset[:, 5]` reads the sixth row of the dataset."),
     ("How much memory does h5py need to read one row of a dataset?",
      "Only the selected part is read from disk.")),
    (D / "02_datasets.md", "Properties",
     [("What is the value of the chunks property of a contiguous dataset?",
       "It is `None` for contiguous storage; for a chunked dataset it is the chunk shape."),
      ("Which dataset property gives the number of elements?", "The `size` property gives the number of elements.")],
     ("What is the value of the chunks property of a contiguous dataset?",
      "It is `True` for contiguous storage and `False` for chunked datasets."),
     ("Which property gives the compression level of a dataset?", "The `compression` property gives it.")),
    (D / "02_datasets.md", "Resizing",
     [("What must be set when a dataset is created so that it can grow later?",
       "It must be created with `maxshape`, using `None` for an axis without a limit."),
      ("How do you add rows to a resizable dataset whose maxshape is (None, 24)?",
       "Call `dset.resize(new_rows, axis=0)`.")],
     ("What storage layout do resizable datasets use?", "Resizable datasets are always stored contiguously."),
     ("How can a dataset be shrunk along its second axis?", "Call `dset.resize(new_rows, axis=0)`.")),
    (D / "03_chunking_and_compression.rst", "Chunking and compression",
     [("Which features does chunked storage make possible in HDF5?",
       "Chunked storage makes compression, resizing and checksums possible.")],
     ("Which features does chunked storage make possible in HDF5?",
      "Chunked storage makes virtual datasets, soft links and external files possible."),
     ("What chunk shape does HDF5 use for a contiguous dataset?",
      "Equally shaped pieces that are read and written as a whole.")),
    (D / "03_chunking_and_compression.rst", "Choosing a chunk shape",
     [("What size does the documentation recommend for a chunk?",
       "Between roughly 10 KiB and 1 MiB, following the way the data is read."),
      ("Why should very large chunks be avoided?",
       "They force HDF5 to read and decompress data that the program never asked for.")],
     ("What size does the documentation recommend for a chunk?",
      "Between roughly 10 MiB and 1 GiB, whatever the access pattern."),
     ("Which chunk shape does h5py pick when chunks=True is passed for a 1-D dataset?",
      "It picks a shape such as `chunks=(100, 24)`.")),
    (D / "03_chunking_and_compression.rst", "Compression filters",
     [("Which compression levels does the gzip filter accept in h5py, and how are they set?",
       "Levels 0 to 9, given with the `compression_opts` argument."),
      ("What does fletcher32=True add to a dataset?",
       "A checksum on every chunk, so corruption is detected when the chunk is read.")],
     ("When is the szip filter available?", "szip is always available because it ships with h5py."),
     ("Which compression level does the lzf filter use by default?",
      "lzf is a fast filter with a moderate ratio.")),
    (D / "03_chunking_and_compression.rst", "The chunk cache",
     [("How large is the chunk cache of an open dataset by default?", "The chunk cache is 1 MiB by default."),
      ("Which argument of File raises the chunk cache size?", "The `rdcc_nbytes` argument of `File`.")],
     ("How large is the chunk cache of an open dataset by default?", "The chunk cache is 64 KiB by default."),
     ("How many chunks can the default chunk cache hold?", "The cache keeps 1 MiB of recently used chunks.")),
    (D / "04_attributes.rst", "Using attributes",
     [('How do you delete the attribute "units" from a dataset?', 'Use `del dset.attrs["units"]`.'),
      ("What kinds of values can h5py attributes hold?", "Numbers, strings or small NumPy arrays.")],
     ("What kinds of values can h5py attributes hold?", "Only strings; numbers must be stored in datasets."),
     ("How do you rename an attribute in h5py?", 'Use `dset.attrs["units"] = "kelvin"`.')),
    (D / "04_attributes.rst", "Limits",
     [("What is the size limit of one attribute with the default file format?",
       "Each attribute is limited to 64 KiB."),
      ("Where should large metadata be stored instead of in an attribute?",
       "In a dataset of its own; an attribute can then store a reference or a path to it.")],
     ("What is the size limit of one attribute with the default file format?",
      "Each attribute is limited to 1 MiB."),
     ("What is the attribute size limit with the latest file format?", "Each attribute is limited to 64 KiB.")),
    (D / "05_strings_and_types.md", "Numbers",
     [("How are booleans stored in HDF5 by h5py?", "As an HDF5 enumeration of `0` and `1`."),
      ("What are compound types built from?", "From a NumPy structured dtype; they store records with named fields.")],
     ("How are booleans stored in HDF5 by h5py?", 'As plain 8-bit unsigned integers ("u1") without an enumeration.'),
     ("How are complex numbers stored in HDF5 by h5py?",
      "As compound types built from a NumPy structured dtype.")),
    (D / "05_strings_and_types.md", "Strings",
     [("What does reading a string dataset return since h5py 3.0?",
       "It returns `bytes` objects; call `dset.asstr()[...]` to get Python `str` values decoded as UTF-8."),
      ("How are fixed-length strings padded?", 'With zero bytes; they use a NumPy bytes type such as "S10".')],
     ("What does reading a string dataset return since h5py 3.0?",
      "It returns Python `str` objects already decoded as UTF-8."),
     ("What did reading a string dataset return before h5py 3.0?", "It returned `bytes` objects.")),
    (D / "06_parallel_and_swmr.md", "Single writer, multiple readers",
     [("What must a SWMR reader call to see new data?",
       "It calls `dset.refresh()`, after opening the file with `swmr=True`."),
      ("What is not allowed once SWMR mode is switched on?", "Creating new groups or datasets is not allowed.")],
     ("How does the writer switch a file into SWMR mode?",
      'It opens the file with `libver="earliest"` and passes `swmr=True` to create_dataset.'),
     ("How many reader processes can SWMR serve at the same time?",
      "Multiple readers, which open the file with `swmr=True`.")),
    (D / "06_parallel_and_swmr.md", "Parallel HDF5",
     [("Which driver does h5py use to open a file with Parallel HDF5?",
       'The "mpio" driver, with an MPI communicator from mpi4py.'),
      ("Which operations must every process call with the same arguments in Parallel HDF5?",
       "Operations that change the file structure, such as creating a dataset.")],
     ("Which driver does h5py use to open a file with Parallel HDF5?",
      'The "core" driver, with a thread pool from multiprocessing.'),
     ("Which MPI implementation does h5py require for Parallel HDF5?",
      "An HDF5 library built for MPI and a communicator from `mpi4py`.")),
    (D / "06_parallel_and_swmr.md", "Threads",
     [("Why do threads not speed up HDF5 input and output in h5py?",
       "h5py serialises calls into the HDF5 library with a global lock.")],
     ("Why do threads not speed up HDF5 input and output in h5py?",
      "h5py releases its lock for every call, so threads compete for the disk."),
     ("How can the global lock of h5py be disabled?",
      "h5py serialises calls into the HDF5 library with a global lock.")),
    (H / "strings.rst.txt", "Reading strings",
     [("Which method returns str objects from an h5py string dataset?",
       "`Dataset.asstr()` retrieves `str` objects instead of bytes."),
      ("How are variable-length strings in attributes read?",
       "As `str` objects, decoded as UTF-8 with surrogate escaping for unrecognised bytes.")],
     ("How are variable-length strings in attributes read?", "As `bytes` objects, without any decoding."),
     ("How are fixed-length strings in attributes read?", "As `str` objects decoded as UTF-8.")),
    (H / "strings.rst.txt", "Storing strings",
     [("What happens when a longer string is written to a fixed-length string dataset?",
       "The string is silently truncated."),
      ("How are Python str and bytes objects marked when they create a new dataset or attribute?",
       "Both become variable-length strings: str is marked as UTF-8 and bytes as ASCII.")],
     ("What happens when a longer string is written to a fixed-length string dataset?",
      "h5py raises an error because the string does not fit."),
     ("What is the maximum length of a variable-length string in HDF5?",
      "Fixed-length strings hold a set number of bytes.")),
    (H / "strings.rst.txt", "How to store raw binary data",
     [("How should a non-text binary blob be stored in an h5py attribute?",
       "Wrap it in a `void` type with `np.void(blob)`, which maps to the HDF5 OPAQUE datatype.")],
     ("How should a non-text binary blob be stored in an h5py attribute?",
      'Store it as a fixed-length string with an "S" dtype, which maps to a UTF-8 string.'),
     ("What is the maximum size of an opaque attribute?", "The blob maps to the HDF5 OPAQUE datatype.")),
    (H / "strings.rst.txt", "Object names",
     [("How does h5py encode a Unicode object name?",
       "Unicode names are encoded as UTF-8; h5py uses H5T_CSET_ASCII for ASCII characters and H5T_CSET_UTF8 "
       "otherwise.")],
     ("What happens to a byte string supplied as an object name?",
      "It is decoded as Latin-1 and stored as UTF-8."),
     ("How long may an object name be?", "Unicode strings are used exclusively for object names in the file.")),
    (H / "swmr.rst.txt", "Using the SWMR feature from h5py",
     [("What must a SWMR writer do regularly so that readers can see new data?",
       "It flushes the target dataset, for example with `dset.flush()`."),
      ("Which libver setting do the SWMR examples use when opening the file?", "They use `libver='latest'`.")],
     ("What must a SWMR writer do regularly so that readers can see new data?",
      "It closes and reopens the file after every write."),
     ("What happens if a reader opens the file before the writer switches on SWMR mode?",
      "The reader can open the file with swmr=True.")),
    (H / "special.rst.txt", "Enumerated types",
     [("How are HDF5 ENUM types read and written in h5py?",
       "As integers, since NumPy has no enumerated datatype."),
      ("What does h5py.check_enum_dtype return for a dtype that is not an enumerated type?",
       "It returns `None`.")],
     ("What does h5py.check_enum_dtype return for a dtype that is not an enumerated type?",
      "It raises a TypeError."),
     ("Which names are allowed for the values of an enumerated type?", '"RED", "GREEN" and "BLUE".')),
    (H / "vds.rst.txt", "What are virtual datasets?",
     [("What do virtual datasets let you do?",
       "They map several real datasets together into a single, sliceable dataset through an interface layer."),
      ("Which HDF5 library versions cannot open virtual dataset files?", "Versions older than 1.10.")],
     ("Which HDF5 library versions cannot open virtual dataset files?", "Versions newer than 1.10."),
     ("How much slower is reading a virtual dataset than reading a normal one?",
      "It can be read just like any other HDF5 dataset.")),
    (H / "mpi.rst.txt", "How does Parallel HDF5 work?",
     [("Which Python package provides the MPI bindings used with Parallel HDF5?", "The `mpi4py` package."),
      ("How do you launch four parallel instances of a Python script with MPI?",
       "Run `mpiexec -n 4 python demo.py`.")],
     ("Which Python package provides the MPI bindings used with Parallel HDF5?",
      "The standard `multiprocessing` package."),
     ("Which MPI library version does Parallel HDF5 require?", "The MPI (Message Passing Interface) standard.")),
    (H / "mpi.rst.txt", "Collective versus independent operations",
     [("Which HDF5 operations must be performed collectively by all processes?",
       "Anything that modifies the structure or metadata of the file, such as creating a group."),
      ("Can writing data to a dataset be done by only some of the processes?",
       "Yes, writing data to a dataset is an independent operation.")],
     ("Which HDF5 operations must be performed collectively by all processes?",
      "Only writing data to a dataset; a group can be created by a single process."),
     ("Must reading data from a dataset be done collectively?",
      "Anything which modifies the metadata must be done collectively.")),
    (H / "faq.rst.txt", "Appending data to a dataset",
     [("How do you append rows to an h5py dataset?",
       "There is no append: create the dataset with `maxshape` and expand it with `resize`, e.g. "
       "`dset.resize(20, axis=0)`."),
      ("Can the number of dimensions of a dataset change after it is created?",
       "No, the dataset rank is fixed when it is created.")],
     ("Can the number of dimensions of a dataset change after it is created?",
      "Yes, resize can add new dimensions to an existing dataset."),
     ("How fast is resizing a dataset compared to appending rows in PyTables?",
      "h5py is NumPy-like, not database-like.")),
    (H / "high/file.rst.txt", "Closing files",
     [("What happens to datasets from a file after File.close() is called?",
       "They become unusable; this is what HDF5 calls 'strong' closing."),
      ("When is a file closed when its File object merely goes out of scope?",
       "Only when no remaining objects belonging to it exist, which HDF5 calls 'weak' closing.")],
     ("What happens to datasets from a file after File.close() is called?",
      "They stay usable until they are deleted; this is what HDF5 calls 'weak' closing."),
     ("Does File.close() flush buffered data to disk first?",
      "The file will be closed and any objects from it become unusable.")),
    (H / "high/file.rst.txt", "User block",
     [("What sizes are allowed for an HDF5 user block?",
       "Zero, the default, or a power of two greater than or equal to 512."),
      ("Which File keyword sets the size of the user block?", "The `userblock_size` keyword.")],
     ("What sizes are allowed for an HDF5 user block?", "Any multiple of 256 bytes, including 256."),
     ("What is the largest user block size HDF5 allows?", "A power of two greater than or equal to 512.")),
    (H / "high/group.rst.txt", "Soft links",
     [("How do you create a soft link in h5py?",
       "Assign `h5py.SoftLink('/somegroup')` to a name, e.g. `myfile[\"alias\"] = h5py.SoftLink('/somegroup')`."),
      ("What happens to a soft link when its target is removed?",
       "The link dangles: accessing it raises a KeyError.")],
     ("What happens to a soft link when its target is removed?",
      "The link is deleted automatically together with its target."),
     ("Can a soft link point to an object in another file?",
      "Soft links contain a text path instead of a pointer to the object.")),
    (H / "high/group.rst.txt", "Hard links",
     [("What happens when an existing dataset is assigned to a new name in a group?",
       "A new link to the same dataset is made; it is not a copy.")],
     ("What happens when an existing dataset is assigned to a new name in a group?",
      "h5py writes a full copy of the dataset under the new name."),
     ("How many hard links can point to one dataset?", "Objects can be stored in multiple groups.")),
    (H / "high/dataset.rst.txt", "Resizable datasets",
     [("What happens to the data in the missing region when a dataset axis shrinks?",
       "It is discarded; the data does not rearrange itself as it does in NumPy."),
      ("Up to what size can an unlimited axis grow?", "Up to the HDF5 per-axis limit of 2**64 elements.")],
     ("Up to what size can an unlimited axis grow?", "Up to 2**32 elements."),
     ("How long does resizing a large dataset take?",
      "Datasets can be resized up to their maximum size by calling Dataset.resize.")),
    (H / "high/dataset.rst.txt", "Scale-Offset filter",
     [("What does the scaleoffset value mean for floating-point data?",
       "It is the number of digits after the decimal point to retain."),
      ("Does the scale-offset filter preserve NaN and infinity values?",
       "No, it currently does not preserve special float values such as NaN and inf.")],
     ("What does the scaleoffset value mean for floating-point data?",
      "It is the number of bits to retain in the mantissa."),
     ("What compression ratio does the scale-offset filter reach on float data?",
      "It trades precision for storage space.")),
    (H / "high/dataset.rst.txt", "Shuffle filter",
     [("How do you enable the shuffle filter?", "Set the create_dataset keyword `shuffle` to True.")],
     ("Is the shuffle filter lossy?", "Yes, it discards low-order bytes to improve the compression ratio."),
     ("How much does the shuffle filter improve the gzip compression ratio?",
      "It may improve the compression ratio.")),
    (H / "high/dataset.rst.txt", "Lossless compression filters",
     [("What is the default gzip compression level in h5py?",
       "The default level is 4; `compression_opts` may be an integer from 0 to 9."),
      ("Which options does the LZF filter take?", "None: the LZF filter has no options.")],
     ("What is the default gzip compression level in h5py?", "The default level is 9, the highest level."),
     ("What is the default compression level of the SZIP filter?", "The default level is 4.")),
    (H / "high/file.rst.txt", "Data alignment",
     [("Which File arguments control data alignment?", "`alignment_threshold` and `alignment_interval`."),
      ("From where is the alignment of data measured in the file?", "From the end of the user block.")],
     ("From where is the alignment of data measured in the file?",
      "From the start of the file, including the user block."),
     ("Which alignment interval gives the best performance on SSDs?",
      "The `alignment_interval` in bytes within the file.")),
    (H / "refs.rst.txt", "Null references",
     [("How can you tell whether an h5py reference is null?",
       "By its truth value: `bool(ref)` is False for a null reference.")],
     ("How can you tell whether an h5py reference is null?", "Compare it with None: a null reference is `None`."),
     ("How do you create a null reference explicitly?",
      "Uninitialized elements of a reference dataset are null references.")),
]

OFF_TOPIC = [
    ("At what temperature should bread dough proof?", "Around 24 to 27 degrees Celsius, until it doubles in size."),
    ("How many players does a football team have on the pitch?", "Eleven players, including the goalkeeper."),
    ("What is the capital of Australia?", "Canberra is the capital of Australia."),
    ("How long should pasta be boiled?", "Most dried pasta needs eight to twelve minutes in salted water."),
    ("Which planet is the largest in the solar system?", "Jupiter is the largest planet in the solar system."),
    ("How do you remove a red wine stain from a carpet?", "Blot it, then apply a mix of dish soap and vinegar."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("How often should a cactus be watered?", "About once every two to three weeks in summer."),
    ("What does a marathon runner eat before a race?", "Mostly carbohydrates such as pasta, rice and bananas."),
    ("How do you tune a guitar to standard pitch?", "Tune the strings to E, A, D, G, B and E from low to high."),
    ("Why is the sky blue?", "Air molecules scatter blue sunlight more strongly than red light."),
    ("How many bones does an adult human have?", "An adult human has 206 bones."),
    ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
    ("How do you change a flat bicycle tyre?", "Remove the wheel, replace the inner tube and pump it up."),
    ("Which language is spoken in Brazil?", "Portuguese is the official language of Brazil."),
    ("How long does it take to hard-boil an egg?", "About ten minutes in boiling water."),
    ("What causes the tides on Earth?", "Mainly the gravitational pull of the Moon."),
    ("How do you say thank you in Japanese?", "You say arigatou gozaimasu."),
    ("When did the Second World War end?", "It ended in 1945."),
    ("What should you pack for a weekend hiking trip?", "Water, food, a rain jacket, a map and a first-aid kit."),
    ("How can I improve my sleep?", "Keep a regular bedtime and avoid screens late in the evening."),
    ("Which instrument has 88 keys?", "A standard piano has 88 keys."),
    ("What is photosynthesis?", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
    ("How do you make a paper airplane fly farther?", "Fold it symmetrically and give it a gentle, level throw."),
    ("Who wrote Pride and Prejudice?", "Jane Austen wrote Pride and Prejudice."),
    ("What is the speed of sound in air?", "About 343 metres per second at 20 degrees Celsius."),
]

VAGUE = [
    "What is this?", "What does the passage say?", "What is described here?", "Can you explain this?",
    "What is it about?", "What does this section cover?", "What is mentioned in the text?",
    "Why is this important?", "What does the document describe?", "What is the main point?",
    "How does it work?", "What does the author explain?", "What is this passage about?", "What is going on here?",
    "What can you tell me about it?",
]
ECHO = [
    lambda q: q,
    lambda q: q.rstrip("?") + ".",
    lambda q: "The question is: " + q,
    lambda q: "You are asking " + q[0].lower() + q[1:].rstrip("?") + ".",
    lambda q: q.rstrip("?") + "? That is what the passage asks.",
]


def truncate(answer: str, rng: random.Random) -> str | None:
    words = answer.split()
    if len(words) < 7:
        return None
    cut = max(4, int(len(words) * rng.uniform(0.4, 0.65)))
    text = " ".join(words[:cut]).rstrip(".,;:")
    return text


def build(seed: int = 8) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []
    texts = []
    for path, heading, *_ in PASSAGES:
        texts.append(passage(path, heading))

    def add(kind: str, i: int, q: str, a: str, label: int) -> None:
        path, heading = PASSAGES[i][0], PASSAGES[i][1]
        source = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else f"python-h5py-doc/{path.relative_to(H)}"
        rows.append({"id": f"{kind}-{sum(r['kind'] == kind for r in rows) + 1:03d}", "question": q, "answer": a,
                     "provenance": {"source_text": texts[i], "source": f"{source}#{heading}"},
                     "label": label, "kind": kind})

    goods = [(i, q, a) for i, p in enumerate(PASSAGES) for q, a in p[2]]
    for i, q, a in goods:
        add("good", i, q, a, 1)
    for i, p in enumerate(PASSAGES):
        add("contradicted", i, *p[3], 0)
        add("unanswerable", i, *p[4], 0)
    n_derived = 30
    picks = rng.sample(goods, n_derived)
    for k, (i, _q, a) in enumerate(picks):  # statement posing as a question
        if k % 3 == 2:
            heading = PASSAGES[i][1]
            add("statement", i, f"This section explains {heading[0].lower() + heading[1:].rstrip('?')}.", a, 0)
        else:
            add("statement", i, a, a if k % 3 == 0 else texts[i].split("\n\n", 1)[1].split(".")[0] + ".", 0)
    for k, (i, _q, a) in enumerate(rng.sample(goods, n_derived)):
        add("vague", i, VAGUE[k % len(VAGUE)], a, 0)
    for i, q, _a in rng.sample(goods, n_derived):  # answer of a passage from another file
        others = [g for g in goods if PASSAGES[g[0]][0] != PASSAGES[i][0]]
        add("other_passage", i, q, rng.choice(others)[2], 0)
    for k, (i, q, _a) in enumerate(rng.sample(goods, n_derived)):
        add("echo", i, q, ECHO[k % len(ECHO)](q), 0)
    long_goods = [g for g in goods if len(g[2].split()) >= 7]
    for i, q, a in rng.sample(long_goods, min(n_derived, len(long_goods))):
        add("truncated", i, q, truncate(a, rng) or a, 0)
    for q, a in OFF_TOPIC:
        add("off_topic", rng.randrange(len(PASSAGES)), q, a, 0)
    rng.shuffle(rows)  # mixed kinds in any prefix, so load.limit=N gives a usable subset
    return rows


def main() -> None:
    if not DEBIAN.is_dir():
        sys.exit(f"needs Debian's python-h5py-doc ({DEBIAN}); the committed {OUT} is already built")
    rows = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    print(f"wrote {len(rows)} rows to {OUT}: {counts}")


if __name__ == "__main__":
    main()
