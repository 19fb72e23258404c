import { errorTable } from './errors.js';
import type { ApiRouter } from './routing.js';

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
}

/** One OpenAPI 3 document from the fragments of the loaded modules' public routers. */
export function buildOpenApi(info: OpenApiInfo, routers: ApiRouter[]) {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routers) for (const [p, ops] of Object.entries(r.paths)) paths[p] = { ...paths[p], ...ops };
  return {
    openapi: '3.0.3',
    info,
    servers: [{ url: '/' }],
    tags: [...new Map(routers.map((r) => [r.tag, { name: r.tag, description: `module ${r.module}` }])).values()],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        ErrorEnvelope: {
          type: 'object',
          required: ['success', 'error_code', 'message'],
          properties: {
            success: { type: 'boolean', enum: [false] },
            error_code: { type: 'string', enum: Object.keys(errorTable()).sort() },
            message: { type: 'string' },
            details: {
              type: 'array',
              items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
            },
          },
        },
        Pagination: {
          type: 'object',
          properties: {
            page: { type: 'integer' },
            per_page: { type: 'integer' },
            total: { type: 'integer' },
            total_pages: { type: 'integer' },
          },
        },
      },
    },
  };
}
