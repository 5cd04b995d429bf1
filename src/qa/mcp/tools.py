"""The MCP tools and resources: thin calls into the same library the HTTP routes call.

Each tool takes a lease on the live build (:func:`~qa.server.deps.leased`), calls the
library (the searcher, :mod:`qa.citations`) and returns both a structured result (the
same pydantic model, so the same JSON schema, as the matching HTTP route) and a short
text an assistant reads (:mod:`qa.mcp.render`). A library error becomes a tool error
(``is_error``) whose text is the message of the HTTP API's error body and whose
structured content is that body (:func:`qa.server.errors.error_detail`); anything
unexpected is logged and reaches the client only as the SDK's "Error executing tool".

Tools: ``ask``, ``get_passage``, ``cite``, ``verify_quotes``, ``list_documents``; one
resource per document, ``qa://documents/{doc_id}``, with its cleaned text. Nothing here
reloads, builds or administers: the admin routes have no MCP counterpart.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from mcp_types import Resource as McpResource
from pydantic import BaseModel, Field

from qa import __version__
from qa.citations.cite import MAX_CONTEXT, PassageInContext, passage_in_context, resolve_document, summarize
from qa.citations.formats import MEDIA_TYPES, CiteFormat, render_citation
from qa.citations.verify import VerifyReport
from qa.config import MAX_K, MAX_QUESTION_CHARS
from qa.errors import DocumentNotFoundError, QAError
from qa.index.filters import Filters
from qa.mcp import render
from qa.search.models import Answer, Mode, check_question
from qa.search.retrieval import Searcher
from qa.server.deps import AppState, ServiceUnavailable, leased
from qa.server.errors import error_detail
from qa.server.schemas import MODE_HELP, AskFilters, DocumentList

INSTRUCTIONS = """\
qa answers from a fixed collection of articles with verbatim passages and citations that resolve.
Use `ask` before stating anything these articles cover; quote the passages it returns word for word
(never paraphrase inside quotation marks) and put each passage's citation beside its quote. When
`grounded` is false, no passage clearly answers: say so rather than guess. Before handing over a
draft, run `verify_quotes` on it and fix every quote it does not find. `get_passage` reads around a
passage, `cite` gives a citation as markdown, text, csl-json or bibtex, `list_documents` names the
articles (each readable whole as the resource qa://documents/{doc_id}).
"""

ASK_HELP = """\
Search the articles for the passages that answer a question: use it before writing anything that \
states facts from them. Returns up to k ranked passages, each a verbatim span of one article with a \
ready-made citation, the sentences that answer (highlights), passages of other articles reporting \
the same (also_reported_in) and `grounded` (false: no passage clearly answers; say so). Quote a \
passage word for word, with its citation beside the quote; never put your own words in quotation \
marks. Same result as GET /ask."""

GET_PASSAGE_HELP = """\
Read one passage by its passage_id (from ask or verify_quotes), with `context` passages before and \
after it in its article: use it to check what surrounds a quote before you rely on it. Each passage \
comes with its citation. Same as GET /passages/{passage_id}, plus the neighbours."""

CITE_HELP = """\
A passage's citation in one format: markdown (what ask gives), text, csl-json (CSL 1.0.2 data, for \
Zotero, Pandoc, citeproc) or bibtex (@article with a key stable across rebuilds). Use it for a \
bibliography or a reference manager. Same as GET /passages/{passage_id}/cite."""

VERIFY_HELP = """\
Check the quotes of a draft before you hand it over: every “curly” or "straight" quoted stretch of \
five words or more and every > block quote is looked up in the articles (a text with no quotes is \
one quote). A found quote comes back with its exact source offsets and citation; one that is not \
verbatim comes back with the closest sentence, its citation and the words that differ: change the \
quote to the source's words or stop presenting it as a quotation. Same result as POST /verify."""

LIST_DOCUMENTS_HELP = """\
The articles that can be searched: id, title, author, outlet, date and number of passages. Use an \
id in ask's filters.doc_id, or read the whole cleaned article as the resource \
qa://documents/{doc_id}. Same as GET /documents."""

#: Every tool only reads the index it is given; none changes it, none reaches outside it.
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class FormattedCitation(BaseModel):
    passage_id: str
    format: CiteFormat
    media_type: str = Field(description="The media type GET /passages/{passage_id}/cite sends it with.")
    citation: str = Field(description="The citation in that format (CSL-JSON: a JSON array of one item).")


Lifespan = Callable[[MCPServer[None]], AbstractAsyncContextManager[None]]


class QaMcpServer(MCPServer[None]):
    """The SDK's server, listing one resource per document of the live build besides the template."""

    def __init__(self, state: AppState, lifespan: Lifespan | None = None) -> None:
        super().__init__(
            name="qa",
            title="qa: verbatim, cited passages",
            instructions=INSTRUCTIONS,
            version=__version__,
            lifespan=lifespan,
            log_level="WARNING",
        )
        self.state = state

    async def list_resources(self) -> list[McpResource]:
        listed = await super().list_resources()
        return listed + await anyio.to_thread.run_sync(self._document_resources)

    def _document_resources(self) -> list[McpResource]:
        try:
            with leased(self.state) as searcher:
                documents = searcher.store.documents()
        except ServiceUnavailable:
            return []  # nothing to list until an index is open; the tools say why
        return [
            McpResource(
                uri=render.document_uri(d.doc_id),
                name=d.doc_id,
                title=d.title,
                description=f"The cleaned text of “{d.title}” ({d.source}).",
                mime_type="text/plain",
            )
            for d in documents
        ]


def create_mcp_server(state: AppState, lifespan: Lifespan | None = None) -> QaMcpServer:
    """The MCP server over ``state`` (the live build the HTTP API serves, or the one ``qa mcp`` opens).

    ``lifespan`` starts and stops ``state`` when the server runs on its own (stdio); under
    ``qa serve`` the HTTP app's lifespan does.
    """
    server = QaMcpServer(state, lifespan)
    _add_asking(server, state)
    _add_passages(server, state)
    _add_documents(server, state)
    return server


def _add_asking(server: QaMcpServer, state: AppState) -> None:
    """``ask`` and ``verify_quotes``: what an assistant calls before and after writing."""
    default_k = state.settings.default_k

    @server.tool(title="Ask the articles", description=ASK_HELP, annotations=READ_ONLY)
    def ask(
        question: Annotated[str, Field(description="The question, in words.", max_length=MAX_QUESTION_CHARS)],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many passages to return.")] = default_k,
        mode: Annotated[Mode, Field(description=MODE_HELP)] = "hybrid",
        filters: Annotated[AskFilters | None, Field(description="Which articles to answer from.")] = None,
    ) -> Annotated[CallToolResult, Answer]:
        def work(searcher: Searcher) -> tuple[BaseModel, str]:
            check_question(question, k)  # the API's checks, in the API's words
            chosen = filters.filters() if filters is not None else Filters()
            chosen.check()
            answer = searcher.ask(question, k, mode=mode, filters=chosen)
            return answer, render.answer_text(answer)

        return answered(state, work)

    @server.tool(title="Check quotes", description=VERIFY_HELP, annotations=READ_ONLY)
    def verify_quotes(
        text: Annotated[str, Field(min_length=1, description="One quote, or a whole Markdown draft.")],
    ) -> Annotated[CallToolResult, VerifyReport]:
        def work(searcher: Searcher) -> tuple[BaseModel, str]:
            report = state.verifiers.get(searcher.store).verify(text)
            return report, render.verify_text(report)

        return answered(state, work)


def _add_passages(server: QaMcpServer, state: AppState) -> None:
    """``get_passage`` and ``cite``: one passage, read in context or cited."""

    @server.tool(title="Read a passage", description=GET_PASSAGE_HELP, annotations=READ_ONLY)
    def get_passage(
        passage_id: Annotated[str, Field(description="A passage_id from ask or verify_quotes.")],
        context: Annotated[
            int, Field(ge=0, le=MAX_CONTEXT, description="How many passages before and after to include.")
        ] = 0,
    ) -> Annotated[CallToolResult, PassageInContext]:
        def work(searcher: Searcher) -> tuple[BaseModel, str]:
            found = passage_in_context(searcher.store, passage_id, context)
            return found, render.passage_text(found)

        return answered(state, work)

    @server.tool(title="Cite a passage", description=CITE_HELP, annotations=READ_ONLY)
    def cite(
        passage_id: Annotated[str, Field(description="A passage_id from ask or verify_quotes.")],
        format: Annotated[CiteFormat, Field(description="markdown, text, csl-json or bibtex.")] = "markdown",
    ) -> Annotated[CallToolResult, FormattedCitation]:
        def work(searcher: Searcher) -> tuple[BaseModel, str]:
            view = passage_in_context(searcher.store, passage_id).passage
            text = render_citation(view, format)
            return FormattedCitation(
                passage_id=passage_id, format=format, media_type=MEDIA_TYPES[format], citation=text
            ), text

        return answered(state, work)


def _add_documents(server: QaMcpServer, state: AppState) -> None:
    """``list_documents`` and the ``qa://documents/{doc_id}`` resource."""

    @server.tool(title="List the articles", description=LIST_DOCUMENTS_HELP, annotations=READ_ONLY)
    def list_documents() -> Annotated[CallToolResult, DocumentList]:
        def work(searcher: Searcher) -> tuple[BaseModel, str]:
            documents = [summarize(d) for d in searcher.store.documents()]
            return DocumentList(documents=documents, count=len(documents)), render.documents_text(documents)

        return answered(state, work)

    @server.resource(
        render.DOCUMENT_URI,
        name="document",
        title="An article's cleaned text",
        description="The whole article as indexed (boilerplate removed); passages are spans of its source.",
        mime_type="text/plain",
    )
    def document(doc_id: str) -> str:
        try:
            with leased(state) as searcher:
                return resolve_document(searcher.store, doc_id).cleaned_text
        except DocumentNotFoundError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        except (QAError, ServiceUnavailable) as exc:
            raise ResourceError(error_detail(exc).message) from None


def answered(state: AppState, work: Callable[[Searcher], tuple[BaseModel, str]]) -> CallToolResult:
    """``work`` on a lease of the live build: its model as structured content and its text, or a tool error."""
    try:
        with leased(state) as searcher:
            result, text = work(searcher)
    except (QAError, ServiceUnavailable) as exc:
        return tool_error(exc)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=result.model_dump(mode="json")
    )


def tool_error(exc: QAError | ServiceUnavailable) -> CallToolResult:
    """The HTTP API's error body for ``exc``: its message as the text, the body as structured content."""
    detail = error_detail(exc)
    body: dict[str, Any] = {"error": detail.model_dump(exclude_none=True)}
    return CallToolResult(
        content=[TextContent(type="text", text=detail.message)], structured_content=body, is_error=True
    )
